import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat

/// A client of a running Coffer's HTTP API, for the commands that are one (`kms`, `run`).
/// The server is `--url`, else COFFER_URL, else http://127.0.0.1:8080.
struct CofferClient {
    let base: String
    let timeout: Int

    init(url: String?, timeout: Int, environment: [String: String]) throws {
        let base = (url ?? environment["COFFER_URL"] ?? "http://127.0.0.1:8080").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard let parsed = URL(string: base), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw CommandFailure(code: ExitStatus.invalidConfiguration, message: "the Coffer URL must be http(s)://host[:port]")
        }
        self.base = base
        self.timeout = timeout
    }

    /// A name as one path segment (a `/` in it is encoded).
    static func segment(_ name: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#%;")
        return name.addingPercentEncoding(withAllowedCharacters: allowed) ?? name
    }

    /// GETs `path`, or POSTs `body` as JSON to it, and returns the JSON object answered; a
    /// refusal becomes a failure naming `what` and Coffer's error code and message (which
    /// carry no secret).
    func call(_ path: String, token: String?, body: [String: String]? = nil, what: String) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: base + path)
        request.method = body == nil ? .GET : .POST
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)))
        }
        let response: HTTPClientResponse
        let data: ByteBuffer
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(Int64(timeout)))
            data = try await response.body.collect(upTo: 64 * 1024 * 1024)
        } catch {
            throw CommandFailure(code: ExitStatus.unexpected, message: "cannot reach Coffer at \(base): \(type(of: error))")
        }
        let json = (try? JSONSerialization.jsonObject(with: Data(buffer: data))) as? [String: Any]
        guard response.status == .ok, let json else {
            let error = json?["error"] as? [String: Any]
            let code = error?["code"] as? String ?? "http_\(response.status.code)"
            let message = error?["message"] as? String ?? "the server answered \(response.status.code)"
            throw CommandFailure(code: ExitStatus.unexpected, message: "\(what) refused (\(response.status.code) \(code)): \(message)")
        }
        return json
    }
}
