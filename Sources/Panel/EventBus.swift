import Foundation
import HTTPServer
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

/// Numbered events in a bounded ring, delivered to long polls and event streams.
/// Sequence numbers only grow within one run, so a client resumes with `since` / `Last-Event-ID`.
/// They restart at 1 when the panel starts, so a cursor beyond the newest event is from an earlier
/// run: it gets the whole ring, marked truncated, rather than silence until the numbers catch up.
public final class EventBus: Sendable {
    public let capacity: Int
    /// Names this run, on every event and page: a client that sees it change knows its cursor and
    /// its view are stale even when the new run's numbers have already passed its cursor.
    public let epoch: String

    private struct State {
        var events: [PanelEvent] = []
        var nextSeq: UInt64 = 1
        var waiters: [ObjectIdentifier: (since: UInt64, response: DeferredResponse)] = [:]
        var streams: [ObjectIdentifier: EventStream] = [:]
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
        let (event, waiters, streams) = state.withLock { state in
            let event = PanelEvent(seq: state.nextSeq, epoch: epoch, time: Date().formatted(Self.timeFormat), type: type, subject: subject, data: data)
            state.nextSeq += 1
            state.events.append(event)
            if state.events.count > capacity { state.events.removeFirst(state.events.count - capacity) }
            let waiters = state.waiters.values.map(\.response)
            state.waiters.removeAll()
            return (event, waiters, Array(state.streams.values))
        }
        if !waiters.isEmpty {
            let page = self.page(since: event.seq - 1)
            for waiter in waiters { waiter.complete(page.response) }
        }
        let encoded = Self.encode(event)
        for stream in streams { stream.send(id: String(event.seq), data: encoded) }
        return event
    }

    public struct Page: Sendable, Encodable {
        public var items: [PanelEvent]
        /// Pass as `since` next time.
        public var next: UInt64
        /// True when events after `since` were already dropped from the ring, or `since` is from
        /// an earlier run: the client missed something and should reload what it shows.
        public var truncated: Bool
        public var epoch: String

        var response: Response { .json(self) }
    }

    public func page(since: UInt64) -> Page {
        state.withLock { state in
            let newest = state.nextSeq - 1
            if since > newest {
                return Page(items: state.events, next: newest, truncated: true, epoch: epoch)
            }
            let items = state.events.filter { $0.seq > since }
            let oldest = state.events.first?.seq ?? state.nextSeq
            return Page(items: items, next: items.last?.seq ?? since,
                        truncated: since + 1 < oldest && since < newest, epoch: epoch)
        }
    }

    /// Long poll: answers at once when something is newer than `since`, else when the next event
    /// arrives or after `wait` seconds with an empty page.
    public func poll(since: UInt64, wait: Double) -> Response {
        let current = page(since: since)
        if !current.items.isEmpty || current.truncated || wait <= 0 { return current.response }
        let deferred = DeferredResponse()
        let key = ObjectIdentifier(deferred)
        let missed = state.withLock { state -> Bool in
            if state.nextSeq - 1 > since { return true }
            state.waiters[key] = (since, deferred)
            return false
        }
        if missed {
            deferred.complete(page(since: since).response)
        } else {
            DispatchQueue.global().asyncAfter(deadline: .now() + wait) { [weak self] in
                guard let self else { return }
                self.state.withLock { _ = $0.waiters.removeValue(forKey: key) }
                deferred.complete(self.page(since: since).response)
            }
        }
        return Response(body: .deferred(deferred))
    }

    /// Server-Sent Events: replays what is newer than `since` (the whole ring when `since` is from
    /// an earlier run), then follows live. Events go out unnamed (plain `message`s) with their type
    /// inside the JSON, so one browser handler sees all.
    public func stream(since: UInt64) -> Response {
        let stream = EventStream()
        let key = ObjectIdentifier(stream)
        state.withLock { state in
            let from = since > state.nextSeq - 1 ? 0 : since
            for event in state.events where event.seq > from {
                stream.send(id: String(event.seq), data: Self.encode(event))
            }
            state.streams[key] = stream
        }
        stream.onTermination { [weak self] in
            _ = self?.state.withLock { $0.streams.removeValue(forKey: key) }
        }
        stream.comment("emupanel events")
        var headers = HTTPHeaders()
        headers.add("Content-Type", "text/event-stream")
        headers.add("Cache-Control", "no-cache")
        headers.add("X-Accel-Buffering", "no")
        return Response(status: .ok, headers: headers, body: .stream(stream))
    }

    private static func encode(_ event: PanelEvent) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(event)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
