import CofferCore
import Hummingbird

/// The one writer of the contract's error body, `{"error": {"code", "message"}}`: for a
/// failed request (``response(status:error:)``) and for a failed item of a KMS batch.
enum ErrorBody {
    static func response(status: HTTPResponse.Status, error: CofferError) -> Response {
        var bytes: [UInt8] = []
        append(error, to: &bytes)
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func append(_ error: CofferError, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"error":{"code":"#.utf8)
        JSONLogHandler.appendString(error.code.name, to: &out)
        out.append(contentsOf: #","message":"#.utf8)
        JSONLogHandler.appendString(error.message, to: &out)
        out.append(contentsOf: "}}".utf8)
    }
}
