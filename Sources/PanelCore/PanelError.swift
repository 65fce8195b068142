/// Why a panel operation was refused or failed, in the panel's own terms. Every service throws
/// these; the HTTP adapter maps a `kind` to a status in one place (PanelHTTP/ErrorMapping.swift)
/// and the command line prints `message`. `code` is the stable snake_case name clients match on.
public struct PanelError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The request is not the expected shape (a body that is not JSON, a wrong field type).
        case malformed
        /// Well-formed but not acceptable: a value out of range, an unknown image or machine type.
        case invalid
        case notFound
        /// What it acts on is not in a state that allows it: a guest not running, a name taken,
        /// a guest busy with a task.
        case conflict
        /// More than one request may carry (console input).
        case tooLarge
        /// Not now: starting up, or too many at once. Retry after `retryAfter` seconds.
        case unavailable
        /// Too many failed attempts from one client. Retry after `retryAfter` seconds.
        case rateLimited
        /// The disk is full, or a configured quota of bytes would be exceeded.
        case insufficientStorage
        /// Another host did not answer or failed.
        case peer
    }

    public var kind: Kind
    public var code: String
    public var message: String
    public var retryAfter: Int?

    public init(_ kind: Kind, code: String, message: String, retryAfter: Int? = nil) {
        self.kind = kind
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { "\(code): \(message)" }

    public static func notFound(_ message: String) -> PanelError { PanelError(.notFound, code: "not_found", message: message) }

    public static func invalidState(_ message: String) -> PanelError { PanelError(.conflict, code: "invalid_state", message: message) }

    public static func malformed(_ message: String) -> PanelError { PanelError(.malformed, code: "invalid_json", message: message) }

    public static func insufficientStorage(_ message: String) -> PanelError {
        PanelError(.insufficientStorage, code: "insufficient_storage", message: message)
    }

    public static func busy(_ message: String, retryAfter: Int) -> PanelError {
        PanelError(.unavailable, code: "busy", message: message, retryAfter: retryAfter)
    }
}
