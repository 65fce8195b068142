import Synchronization

/// Something a client reads after a cursor and may wait on for more: the event log, a guest's
/// console. The HTTP adapter turns any feed into a long poll (PanelHTTP/LongPoll.swift), so
/// there is one long-poll implementation however many feeds there are.
public protocol ChangeFeed: Sendable {
    associatedtype Page: Encodable & Sendable
    /// What follows `cursor` now, and whether that is worth answering without waiting
    /// (something new, or a gap the client must learn about).
    func page(after cursor: UInt64) -> (page: Page, ready: Bool)
    /// Calls `wake` once, as soon as something follows `cursor` (at once if something does).
    func waitForChange(after cursor: UInt64, _ wake: @escaping @Sendable () -> Void) -> WaitToken
    /// Forgets a wait that timed out; `wake` is not called after this returns.
    func cancelWait(_ token: WaitToken)
}

public struct WaitToken: Hashable, Sendable {
    let value: UInt64
}

/// The waiting readers of one feed, kept under the feed's own lock: it decides under that lock
/// whether a reader is behind (wake now) or must wait, so no change falls between the two.
struct Waiters: Sendable {
    private var next: UInt64 = 0
    private var waiting: [UInt64: (cursor: UInt64, wake: @Sendable () -> Void)] = [:]

    mutating func add(after cursor: UInt64, _ wake: @escaping @Sendable () -> Void) -> WaitToken {
        next += 1
        waiting[next] = (cursor, wake)
        return WaitToken(value: next)
    }

    mutating func remove(_ token: WaitToken) { waiting.removeValue(forKey: token.value) }

    var count: Int { waiting.count }

    /// Takes every reader whose cursor is below `position`; the caller wakes them outside its lock.
    mutating func takeBehind(_ position: UInt64) -> [@Sendable () -> Void] {
        var woken: [@Sendable () -> Void] = []
        for (key, waiter) in waiting where waiter.cursor < position {
            woken.append(waiter.wake)
            waiting.removeValue(forKey: key)
        }
        return woken
    }
}
