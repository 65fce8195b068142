import Dispatch
import Synchronization

/// A response that another thread provides later: the long-poll building block.
///
/// The server suspends the connection (libmicrohttpd keeps it open without a
/// thread), and resumes it when `complete` is called. The first completion wins.
public final class DeferredResponse: Sendable {
    private enum State {
        case pending
        case waiting(@Sendable (Response) -> Void)
        case completed(Response)
        case delivered
    }

    private let state = Mutex<State>(.pending)

    public init() {}

    /// A deferred response that completes with `fallback` after `seconds` unless completed earlier.
    public convenience init(timeout seconds: Double, fallback: @escaping @Sendable () -> Response) {
        self.init()
        DispatchQueue.global().asyncAfter(deadline: .now() + max(0, seconds)) { [weak self] in
            _ = self?.complete(fallback())
        }
    }

    /// Completes the response; returns false when it was already completed.
    @discardableResult
    public func complete(_ response: Response) -> Bool {
        let (won, deliver): (Bool, (@Sendable (Response) -> Void)?) = state.withLock { state in
            switch state {
            case .pending:
                state = .completed(response)
                return (true, nil)
            case .waiting(let callback):
                state = .delivered
                return (true, callback)
            case .completed, .delivered:
                return (false, nil)
            }
        }
        deliver?(response)
        return won
    }

    /// Called once by the server after it suspended the connection.
    func onComplete(_ callback: @escaping @Sendable (Response) -> Void) {
        let ready: Response? = state.withLock { state in
            switch state {
            case .pending:
                state = .waiting(callback)
                return nil
            case .completed(let response):
                state = .delivered
                return response
            case .waiting, .delivered:
                return nil
            }
        }
        if let ready { callback(ready) }
    }
}
