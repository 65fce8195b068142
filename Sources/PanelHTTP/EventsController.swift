import Foundation
import HTTPServer
import PanelCore

/// Every change as numbered events: long poll and Server-Sent Events.
struct EventsController: Sendable {
    let events: EventBus

    func addRoutes(to api: RouteGroup) {
        api.get("/events", summary: "Events after `since`; waits up to `wait` seconds for the next one (long poll)",
                doc: .init(answer: EventBus.EventsPage.self, query: [.since, .wait])) { request in
            let since = try request.queryInt("since", default: 0, range: 0...Int.max)
            let wait = try request.queryInt("wait", default: 0, range: 0...60)
            return LongPoll.respond(events, after: UInt64(since), wait: Double(wait))
        }
        api.get("/events/stream", summary: "Events as Server-Sent Events; honours Last-Event-ID", doc: .eventStream(query: [.since])) { request in
            let since: Int
            if let last = request.headers["Last-Event-ID"] {
                guard let value = Int(last), value >= 0 else {
                    throw HTTPError(.badRequest, code: "invalid_header", message: "Last-Event-ID must be an event number")
                }
                since = value
            } else {
                since = try request.queryInt("since", default: Int(events.nextSeq) - 1, range: 0...Int.max)
            }
            return Self.stream(events, since: UInt64(since))
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
