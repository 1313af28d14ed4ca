import CofferCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// One log line per request: method, route template, status, duration, caller. The raw
/// path and query are not logged, nor any header or body.
struct RequestLogMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let metrics: Metrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var context = context
        context.requestID = Self.requestID(from: request)
        context.logger[metadataKey: "request_id"] = "\(context.requestID)"
        var response = try await next(request, context)
        response.headers[Self.requestIDField] = context.requestID
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let route = context.endpointPath ?? "unmatched"
        let method = request.method.rawValue
        metrics.increment(.httpRequests, [route, method, String(response.status.code)])
        metrics.observe(.httpRequestDuration, [route, method], seconds: seconds)
        var metadata: Logger.Metadata = [
            "method": "\(method)",
            "route": "\(route)",
            "status": "\(response.status.code)",
            "duration_ms": "\(Int((seconds * 1000).rounded()))",
        ]
        if let principal = context.principal { metadata["actor"] = "\(principal.apiKeyID)" }
        context.logger.info("request", metadata: metadata)
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
