import CofferCore
import CofferCrypto
import Foundation
import Hummingbird
import Logging

/// Turns every error a route throws into the contract's JSON error body
/// `{"error": {"code", "message"}}` with the matching status. Domain errors keep their
/// message; anything unexpected becomes a 500 whose detail goes only to the log. The one
/// place that counts refused bearer tokens and token requests (every `unauthorized` error).
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let metrics: Metrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let (status, domainError) = Self.classify(error)
            if domainError.kind == .unauthorized { metrics.increment(.tokensRejected, [domainError.code.name]) }
            if status.code >= 500 {
                context.logger.error("request failed", metadata: ["error": "\(String(describing: error))", "status": "\(status.code)"])
            }
            var response = ErrorBody.response(status: status, error: domainError)
            if let seconds = domainError.retryAfter { response.headers[.retryAfter] = String(seconds) }
            return response
        }
    }

    /// The status and the catalogued error a client sees for `error`.
    static func classify(_ error: any Error) -> (HTTPResponse.Status, CofferError) {
        switch error {
        case let error as CofferError:
            return (status(of: error.kind), error)
        case let error as StoreError:
            let domainError: CofferError = switch error.code {
            case .unavailable: .databaseUnavailable("the database is unavailable; retry later")
            case .readOnly: .databaseReadOnly("the database does not accept writes right now; retry later")
            case .conflict: .conflict("the resource already exists")
            case .missingReference: .unprocessable("a referenced resource does not exist")
            case .invalidData: .invalidInput("a value in the request is not acceptable (encoding or range)")
            case .unknownValue, .failed: .internalError("internal error")
            }
            return (status(of: domainError.kind), domainError)
        case is SealError:
            return (.internalServerError, .sealedValueUnreadable("a stored value could not be opened; see the server log"))
        case let error as HTTPError:
            return (error.status, CofferError(code(of: error.status), error.body ?? error.status.reasonPhrase))
        case let error as any HTTPResponseError:
            return (error.status, CofferError(code(of: error.status), error.status.reasonPhrase))
        default:
            return (.internalServerError, .internalError("internal error"))
        }
    }

    /// The one place a kind of error becomes an HTTP status.
    static func status(of kind: CofferError.Kind) -> HTTPResponse.Status {
        switch kind {
        case .invalidInput: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .notAllowed: .methodNotAllowed
        case .conflict: .conflict
        case .tooLarge: .contentTooLarge
        case .unsupportedMediaType: .unsupportedMediaType
        case .unprocessable: .unprocessableContent
        case .tooManyRequests: .tooManyRequests
        case .unavailable: .serviceUnavailable
        case .rootKeyMismatch, .internalFailure: .internalServerError
        }
    }

    /// The code of an error Hummingbird raised with only a status.
    static func code(of status: HTTPResponse.Status) -> CofferError.Code {
        switch status.code {
        case 400: .invalidInput
        case 401: .unauthorized
        case 403: .forbidden
        case 404: .notFound
        case 405: .methodNotAllowed
        case 409: .conflict
        case 413: .tooLarge
        case 415: .unsupportedMediaType
        case 422: .unprocessable
        case 429: .tooManyRequests
        case 503: .unavailable
        default: status.code >= 500 ? .internalError : .invalidRequest
        }
    }
}
