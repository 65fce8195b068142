import Foundation
import HTTPServer
import PanelCore
import Synchronization

/// What a browser tab's one event stream carries besides the numbered events, so the tab holds a
/// single connection (browsers allow six per host, shared by every tab): the metrics of each
/// sampling round and the console of the guest it shows. Neither is numbered nor kept in the event
/// ring: the graphs fetch their history (`/guests/{id}/metrics`), and the console resumes from its
/// own byte offset (`consoleSince`) when the stream is opened again.
enum LiveFeeds {
    /// One message in the shape of an event (`seq` 0: not numbered, never replayed).
    struct Message<Payload: Encodable>: Encodable {
        var seq = 0
        var epoch: String
        var time: String
        var type: String
        var subject: String?
        var data: Payload
    }

    /// The console output after `since`, in the console buffer's terms.
    struct ConsoleOutput: Encodable {
        var data: String
        var next: UInt64
        var truncated: Bool
    }

    static func send<Payload: Encodable>(_ type: String, subject: String? = nil, _ data: Payload, epoch: String, to stream: EventStream) {
        let message = Message(epoch: epoch, time: Date().formatted(timeFormat), type: type, subject: subject, data: data)
        guard let bytes = try? encoder.encode(message) else { return }
        stream.send(data: String(decoding: bytes, as: UTF8.self))
    }

    /// Each sampling round as a `metrics` message, until the stream ends.
    static func forwardMetrics(_ metrics: GuestMetrics, epoch: String, to stream: EventStream) {
        let subscription = metrics.subscribe { round in send("metrics", round, epoch: epoch, to: stream) }
        stream.onTermination { metrics.unsubscribe(subscription) }
    }

    /// The guest's console from byte `since` on, as `console.output` messages, until the stream ends.
    static func forwardConsole(_ console: ConsoleBuffer, guestId: String, since: UInt64, epoch: String, to stream: EventStream) {
        ConsoleForwarder(console: console, guestId: guestId, cursor: since, epoch: epoch, stream: stream).start()
    }

    private static let timeFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}

/// Reads a console after its cursor and waits on it for more, on a queue of its own: the guest's
/// CPU thread, which appends the output and wakes the wait, only schedules the read.
private final class ConsoleForwarder: Sendable {
    let console: ConsoleBuffer
    let guestId: String
    let epoch: String
    let stream: EventStream
    private let queue = DispatchQueue(label: "emupanel-console-stream")

    private struct State {
        var cursor: UInt64
        var waiting: WaitToken?
        var ended = false
    }

    private let state: Mutex<State>

    init(console: ConsoleBuffer, guestId: String, cursor: UInt64, epoch: String, stream: EventStream) {
        self.console = console
        self.guestId = guestId
        self.epoch = epoch
        self.stream = stream
        state = Mutex(State(cursor: cursor))
    }

    func start() {
        stream.onTermination { [self] in end() }
        queue.async { [self] in pump() }
    }

    /// Sends what follows the cursor, then waits for more (the wake schedules the next pump).
    private func pump() {
        while true {
            let (ended, cursor) = state.withLock { ($0.ended, $0.cursor) }
            if ended { return }
            let (chunk, ready) = console.page(after: cursor)
            if ready {
                LiveFeeds.send(
                    "console.output", subject: guestId,
                    LiveFeeds.ConsoleOutput(data: chunk.data, next: chunk.next, truncated: chunk.truncated),
                    epoch: epoch, to: stream)
                state.withLock { $0.cursor = chunk.next }
                continue
            }
            let token = console.waitForChange(after: cursor) { [self] in queue.async { self.pump() } }
            let endedMeanwhile = state.withLock { state -> Bool in
                if state.ended { return true }
                state.waiting = token
                return false
            }
            if endedMeanwhile { console.cancelWait(token) }
            return
        }
    }

    private func end() {
        let token = state.withLock { state -> WaitToken? in
            state.ended = true
            defer { state.waiting = nil }
            return state.waiting
        }
        if let token { console.cancelWait(token) }
    }
}
