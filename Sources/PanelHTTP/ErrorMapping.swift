import HTTPServer
import PanelCore

/// The one place a panel error becomes an HTTP status (SPEC §5, §8): the services speak of what
/// went wrong, this says how HTTP calls it.
extension PanelError {
    var status: HTTPStatus {
        switch kind {
        case .malformed: .badRequest
        case .invalid: .unprocessableEntity
        case .notFound: .notFound
        case .conflict: .conflict
        case .tooLarge: .payloadTooLarge
        case .unavailable: .serviceUnavailable
        case .rateLimited: .tooManyRequests
        case .insufficientStorage: .insufficientStorage
        case .peer: .badGateway
        }
    }

    var http: HTTPError {
        HTTPError(status, code: code, message: message, headers: retryAfter.map { [("Retry-After", String($0))] } ?? [])
    }
}

/// Turns a panel error thrown by a handler into its HTTP answer; outermost in the API's chain.
struct PanelErrorMapping: Middleware {
    func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response {
        do {
            return try next(request)
        } catch let error as PanelError {
            throw error.http
        }
    }
}

/// Handlers' own translation of whatever their work throws, for work finished off the request's
/// thread (a worker pool, a long poll): the same mapping the middleware applies.
func respondMapped(_ body: () throws -> Response) -> Response {
    do {
        return try body()
    } catch let error as PanelError {
        return error.http.response
    } catch let error as HTTPError {
        return error.response
    } catch {
        return HTTPError(.internalServerError, code: "internal_error", message: String(describing: error)).response
    }
}
