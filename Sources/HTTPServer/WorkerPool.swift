import Foundation
import Synchronization

/// A few threads of its own for handlers whose work may block — wait for another thread, read a
/// large file, call another host — so that it never holds one of libmicrohttpd's threads (a couple
/// of slow requests would stall every other client, `/health` included) nor Dispatch's shared pool.
/// The request waits suspended on a `DeferredResponse`. At most `threads + queueLimit` jobs are
/// in flight; past that the pool answers 503 at once rather than queue without bound.
public final class WorkerPool: Sendable {
    public let name: String
    public let threads: Int
    public let queueLimit: Int
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var inFlight = 0
        var stopped = false
    }
    private let state = Mutex(State())
    private let available = DispatchSemaphore(value: 0)

    public init(name: String, threads: Int, queueLimit: Int) {
        precondition(threads > 0 && queueLimit >= 0)
        self.name = name
        self.threads = threads
        self.queueLimit = queueLimit
        for index in 0..<threads {
            let thread = Thread { [self] in work() }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    /// Jobs running or waiting for a thread.
    public var inFlight: Int { state.withLock { $0.inFlight } }

    /// Runs `body` on a pool thread; false, running nothing, when the pool is full or stopped.
    @discardableResult
    public func submit(_ body: @escaping @Sendable () -> Void) -> Bool {
        let accepted = state.withLock { state -> Bool in
            guard !state.stopped, state.inFlight < threads + queueLimit else { return false }
            state.inFlight += 1
            state.jobs.append(body)
            return true
        }
        if accepted { available.signal() }
        return accepted
    }

    /// Answers the request from `body`, run on a pool thread; a full pool answers 503 at once.
    public func respond(_ body: @escaping @Sendable () -> Response) -> Response {
        let deferred = DeferredResponse()
        guard submit({ deferred.complete(body()) }) else {
            return HTTPError(
                .serviceUnavailable, code: "busy", message: "too many slow requests at once; retry in a moment",
                headers: [("Retry-After", "1")]
            ).response
        }
        return Response(body: .deferred(deferred))
    }

    /// Lets the threads end once what was submitted has run; later submissions are refused.
    public func stop() {
        state.withLock { $0.stopped = true }
        for _ in 0..<threads { available.signal() }
    }

    private func work() {
        while true {
            available.wait()
            let job = state.withLock { state -> (@Sendable () -> Void)? in
                state.jobs.isEmpty ? nil : state.jobs.removeFirst()
            }
            guard let job else {
                if state.withLock({ $0.stopped }) { return }
                continue
            }
            job()
            state.withLock { $0.inFlight -= 1 }
        }
    }
}
