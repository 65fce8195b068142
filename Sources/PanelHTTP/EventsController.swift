import Foundation
import HTTPServer
import PanelCore

/// Every change as numbered events: long poll and Server-Sent Events.
struct EventsController: Sendable {
    let events: EventBus
    let metrics: GuestMetrics
    let guests: GuestRegistry

    func addRoutes(to api: RouteGroup) {
        api.get(
            "/events", summary: "Events after `since`; waits up to `wait` seconds for the next one (long poll)",
            doc: .init(answer: EventBus.EventsPage.self, query: [.since, .wait])
        ) { request in
            let since = try request.queryInt("since", default: 0, range: 0...Int.max)
            let wait = try request.queryInt("wait", default: 0, range: 0...60)
            return LongPoll.respond(events, after: UInt64(since), wait: Double(wait))
        }
        api.get(
            "/events/stream",
            summary:
                "Events as Server-Sent Events; honours Last-Event-ID. Optionally also live metrics and one guest's console (unnumbered messages)",
            doc: .eventStream(query: [.since, .metrics, .console, .consoleSince])
        ) { request in
            let since: Int
            if let last = request.headers["Last-Event-ID"] {
                guard let value = Int(last), value >= 0 else {
                    throw HTTPError(.badRequest, code: "invalid_header", message: "Last-Event-ID must be an event number")
                }
                since = value
            } else {
                since = try request.queryInt("since", default: Int(events.nextSeq) - 1, range: 0...Int.max)
            }
            // Everything is checked before anything subscribes: a refused request leaves nothing behind.
            let withMetrics = try request.queryBool("metrics")
            let console = try request.query["console"].map { id in
                (id: id, buffer: try guests.console(id), since: try request.queryInt("consoleSince", default: 0, range: 0...Int.max))
            }
            let response = Self.stream(events, since: UInt64(since))
            guard case .stream(let stream) = response.body else { return response }
            if withMetrics { LiveFeeds.forwardMetrics(metrics, epoch: events.epoch, to: stream) }
            if let console {
                LiveFeeds.forwardConsole(console.buffer, guestId: console.id, since: UInt64(console.since), epoch: events.epoch, to: stream)
            }
            return response
        }
    }

    /// Server-Sent Events: the bus's replay after `since`, then every event live. Events go out
    /// unnamed (plain `message`s) with their type inside the JSON, so one browser handler sees all.
    static func stream(_ events: EventBus, since: UInt64) -> Response {
        let stream = EventStream()
        let subscription = events.subscribe(since: since) { event in
            stream.send(id: String(event.seq), data: encode(event))
        }
        stream.onTermination { events.unsubscribe(subscription) }
        stream.comment("emupanel events")
        var headers = HTTPHeaders()
        headers.add("Content-Type", "text/event-stream")
        headers.add("Cache-Control", "no-cache")
        headers.add("X-Accel-Buffering", "no")
        return Response(status: .ok, headers: headers, body: .stream(stream))
    }

    private static func encode(_ event: PanelEvent) -> String {
        (try? encoder.encode(event)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}

extension RouteDocumentation.QueryParameter {
    static let metrics = Self("metrics", .boolean, "Also send each sampling round of the resource graphs as a `metrics` message")
    static let console = Self("console", .string, "Also send this guest's serial output as `console.output` messages")
    static let consoleSince = Self("consoleSince", .integer, "The console byte offset to start from (the last message's `next`)")
}

extension Request {
    /// A flag in the query: `true`/`1` or `false`/`0`; absent is false.
    func queryBool(_ name: String) throws -> Bool {
        switch query[name] {
        case nil, "false", "0": return false
        case "true", "1", "": return true
        default: throw HTTPError(.badRequest, code: "invalid_query", message: "\(name) must be true or false")
        }
    }
}
