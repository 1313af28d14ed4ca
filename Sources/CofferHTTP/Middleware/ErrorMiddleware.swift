import CofferCore
import CofferCrypto
import Foundation
import Hummingbird
import Logging

/// Turns every error a route throws into the contract's JSON error body
/// `{"error": {"code", "message"}}` with the matching status. Domain errors keep their
/// message; anything unexpected becomes a 500 whose detail goes only to the log.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let (status, code, message) = Self.classify(error)
            if status.code >= 500 {
                context.logger.error("request failed", metadata: ["error": "\(String(describing: error))", "status": "\(status.code)"])
            }
            return Self.response(status: status, code: code, message: message)
        }
    }

    static func classify(_ error: any Error) -> (HTTPResponse.Status, String, String) {
        switch error {
        case let error as CofferError:
            return (status(of: error.kind), error.code, error.message)
        case let error as StoreError:
            switch error.code {
            case .unavailable: return (.serviceUnavailable, "database_unavailable", "the database is unavailable; retry later")
            case .readOnly: return (.serviceUnavailable, "database_read_only", "the database does not accept writes right now; retry later")
            case .conflict: return (.conflict, "conflict", "the resource already exists")
            case .missingReference: return (.unprocessableContent, "unprocessable", "a referenced resource does not exist")
            case .invalidData: return (.badRequest, "invalid_input", "a value in the request is not acceptable (encoding or range)")
            case .failed: return (.internalServerError, "internal_error", "internal error")
            }
        case is SealError:
            return (.internalServerError, "sealed_value_unreadable", "a stored value could not be opened; see the server log")
        case let error as HTTPError:
            let message = error.body ?? error.status.reasonPhrase
            return (error.status, code(of: error.status), message)
        case let error as any HTTPResponseError:
            return (error.status, code(of: error.status), error.status.reasonPhrase)
        default:
            return (.internalServerError, "internal_error", "internal error")
        }
    }

    static func status(of kind: CofferError.Kind) -> HTTPResponse.Status {
        switch kind {
        case .invalidInput: return .badRequest
        case .unauthorized: return .unauthorized
        case .forbidden: return .forbidden
        case .notFound: return .notFound
        case .conflict: return .conflict
        case .tooLarge: return .contentTooLarge
        case .unprocessable: return .unprocessableContent
        case .unavailable: return .serviceUnavailable
        case .rootKeyMismatch, .internalFailure: return .internalServerError
        }
    }

    static func code(of status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: return "invalid_input"
        case 401: return "unauthorized"
        case 403: return "forbidden"
        case 404: return "not_found"
        case 405: return "method_not_allowed"
        case 409: return "conflict"
        case 413: return "too_large"
        case 415: return "unsupported_media_type"
        case 422: return "unprocessable"
        case 503: return "unavailable"
        default: return status.code >= 500 ? "internal_error" : "invalid_request"
        }
    }

    static func response(status: HTTPResponse.Status, code: String, message: String) -> Response {
        struct Body: Encodable {
            struct Detail: Encodable {
                let code: String
                let message: String
            }
            let error: Detail
        }
        let data = (try? JSONEncoder().encode(Body(error: .init(code: code, message: message)))) ?? Data()
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
