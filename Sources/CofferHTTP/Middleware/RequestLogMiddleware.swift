import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// One log line per request: method, route template, status, duration, caller. The raw
/// path and query are not logged, nor any header or body.
struct RequestLogMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var context = context
        context.requestID = Self.requestID(from: request)
        context.logger[metadataKey: "request_id"] = "\(context.requestID)"
        var response = try await next(request, context)
        response.headers[Self.requestIDField] = context.requestID
        let elapsed = ContinuousClock.now - start
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        context.logger.info("request", metadata: [
            "method": "\(request.method.rawValue)",
            "route": "\(context.endpointPath ?? "unmatched")",
            "status": "\(response.status.code)",
            "duration_ms": "\(Int(milliseconds.rounded()))",
        ])
        return response
    }

    static let requestIDField = HTTPField.Name("X-Request-Id")!

    private static func isRequestIDByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x3a, 0x41...0x5a, 0x61...0x7a, 0x2e, 0x5f, 0x2d: return true
        default: return false
        }
    }

    /// The client's request id when it is 1 to 128 characters of `A-Za-z0-9._:-`, else a new UUID.
    static func requestID(from request: Request) -> String {
        if let given = request.headers[requestIDField], (1...128).contains(given.utf8.count),
           given.utf8.allSatisfy(isRequestIDByte) {
            return given
        }
        return UUID().uuidString.lowercased()
    }
}
