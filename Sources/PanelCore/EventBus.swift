import Foundation
import Synchronization

/// One change the panel announces: a guest's state, a task's progress, a snapshot.
public struct PanelEvent: Sendable, Codable, Equatable {
    public var seq: UInt64
    /// The run of the panel that numbered it (see `EventBus.epoch`).
    public var epoch: String
    public var time: String
    /// Dotted kind, e.g. `guest.state`, `task.progress`, `snapshot.created`.
    public var type: String
    /// The id of what changed, when there is one.
    public var subject: String?
    public var data: JSON
}

/// Numbered events in a bounded ring, read after a cursor (long poll: `ChangeFeed`) or followed
/// live (`subscribe`, behind Server-Sent Events). Sequence numbers only grow within one run, so a
/// client resumes with `since` / `Last-Event-ID`. They restart at 1 when the panel starts, so a
/// cursor beyond the newest event is from an earlier run: it gets the whole ring, marked
/// truncated, rather than silence until the numbers catch up.
public final class EventBus: ChangeFeed {
    public let capacity: Int
    /// Names this run, on every event and page: a client that sees it change knows its cursor and
    /// its view are stale even when the new run's numbers have already passed its cursor.
    public let epoch: String

    private struct State {
        var events: [PanelEvent] = []
        var nextSeq: UInt64 = 1
        var waiters = Waiters()
        var subscribers: [UInt64: @Sendable (PanelEvent) -> Void] = [:]
        var nextSubscriber: UInt64 = 0
    }

    private let state = Mutex(State())
    private static let timeFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    public init(capacity: Int = 2048) {
        self.capacity = capacity
        epoch = String(UUID().uuidString.prefix(8)).lowercased()
    }

    /// The sequence number the next event will get.
    public var nextSeq: UInt64 { state.withLock { $0.nextSeq } }

    @discardableResult
    public func publish(_ type: String, subject: String? = nil, data: JSON = .object([:])) -> PanelEvent {
        // Subscribers are called under the lock, so each sees events in order and none is
        // missed or doubled against its replay; they only queue bytes, never block.
        let (event, woken) = state.withLock { state in
            let event = PanelEvent(
                seq: state.nextSeq, epoch: epoch, time: Date().formatted(Self.timeFormat), type: type, subject: subject, data: data)
            state.nextSeq += 1
            state.events.append(event)
            if state.events.count > capacity { state.events.removeFirst(state.events.count - capacity) }
            for deliver in state.subscribers.values { deliver(event) }
            return (event, state.waiters.takeBehind(event.seq))
        }
        for wake in woken { wake() }
        return event
    }

    public struct EventsPage: Sendable, Encodable {
        public var items: [PanelEvent]
        /// Pass as `since` next time.
        public var next: UInt64
        /// True when events after `since` were already dropped from the ring, or `since` is from
        /// an earlier run: the client missed something and should reload what it shows.
        public var truncated: Bool
        public var epoch: String
    }

    public func page(since: UInt64) -> EventsPage {
        state.withLock { state in Self.page(since: since, in: state, epoch: epoch) }
    }

    private static func page(since: UInt64, in state: State, epoch: String) -> EventsPage {
        let newest = state.nextSeq - 1
        if since > newest {
            return EventsPage(items: state.events, next: newest, truncated: true, epoch: epoch)
        }
        let items = state.events.filter { $0.seq > since }
        let oldest = state.events.first?.seq ?? state.nextSeq
        return EventsPage(
            items: items, next: items.last?.seq ?? since,
            truncated: since + 1 < oldest && since < newest, epoch: epoch)
    }

    // MARK: ChangeFeed

    public func page(after cursor: UInt64) -> (page: EventsPage, ready: Bool) {
        let page = page(since: cursor)
        return (page, !page.items.isEmpty || page.truncated)
    }

    public func waitForChange(after cursor: UInt64, _ wake: @escaping @Sendable () -> Void) -> WaitToken {
        let token = state.withLock { state -> WaitToken? in
            state.nextSeq - 1 != cursor ? nil : state.waiters.add(after: cursor, wake)
        }
        guard let token else { wake(); return WaitToken(value: 0) }
        return token
    }

    public func cancelWait(_ token: WaitToken) { state.withLock { $0.waiters.remove(token) } }

    /// Long polls waiting now (tests wait on it rather than sleep).
    var waiting: Int { state.withLock { $0.waiters.count } }

    // MARK: Following live

    /// Calls `deliver` with every event newer than `since` (the whole ring when `since` is from an
    /// earlier run), then with each new one as it is published, in order, until `unsubscribe`.
    /// `deliver` runs under the bus's lock: it must only hand the event on, never block.
    public func subscribe(since: UInt64, _ deliver: @escaping @Sendable (PanelEvent) -> Void) -> UInt64 {
        state.withLock { state in
            let from = since > state.nextSeq - 1 ? 0 : since
            for event in state.events where event.seq > from { deliver(event) }
            state.nextSubscriber += 1
            state.subscribers[state.nextSubscriber] = deliver
            return state.nextSubscriber
        }
    }

    public func unsubscribe(_ id: UInt64) {
        _ = state.withLock { $0.subscribers.removeValue(forKey: id) }
    }
}
