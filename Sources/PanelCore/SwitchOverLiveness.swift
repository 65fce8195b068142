import Foundation
import Migration
import Synchronization

/// The destination's sign of life while the source's guest is parked for the switch-over: a
/// `WAIT` line every half second from the moment it takes the stream until its verdict, so the
/// source can tell a destination still loading (fsyncing disk layers, a QEMU reading the stream)
/// from one that stopped answering. Sent only to sources that said they read it (the offer's
/// `switchOverHeartbeat`); every other line the destination writes goes through `write(line:)`,
/// so no `WAIT` lands inside one.
///
/// Both sides keep time on a thread of their own: a timer on a shared queue fires late on a host
/// whose queues are busy, which is when this matters.
final class SwitchOverHeartbeat: Sendable {
    static let interval = 0.5
    private let socket: TCPSocket
    private let beating: Mutex<Bool>
    private let stopped = DispatchSemaphore(value: 0)

    init(socket: TCPSocket, enabled: Bool) {
        self.socket = socket
        beating = Mutex(enabled)
        guard enabled else { return }
        let thread = Thread { [self] in beat() }
        thread.name = "switch-over heartbeat"
        thread.start()
    }

    private func beat() {
        while stopped.wait(timeout: .now() + Self.interval) == .timedOut {
            let again = beating.withLock { beating -> Bool in
                // A source that went away ends the heartbeat; the stream's own reads report it.
                if beating, (try? socket.write(line: "WAIT")) == nil { beating = false }
                return beating
            }
            if !again { return }
        }
    }

    /// One of the protocol's own lines, never interleaved with a `WAIT`.
    func write(line: String) throws {
        try beating.withLock { _ in try socket.write(line: line) }
    }

    /// No `WAIT` leaves after this returns.
    func stop() {
        let wasBeating = beating.withLock { beating -> Bool in
            defer { beating = false }
            return beating
        }
        if wasBeating { stopped.signal() }
    }
}

/// Bounds how long a parked guest waits on the destination: armed when the guest parks for the
/// switch-over, it shuts the stream's socket once the destination has given no sign of life (a
/// `WAIT` or another line read, a chunk of the last disk layers taken) for the downtime limit plus
/// a grace, or once the switch-over has lasted the limit plus a longer cap, so a destination that
/// stopped answering (SIGSTOP, a dead link) or never finishes fails the migration and the guest
/// runs on here instead of waiting out TCP's timeouts. A destination that is merely slow (a loaded
/// host fsyncing the disk layers) keeps the migration.
final class SwitchOverWatchdog: Sendable {
    private struct State {
        var armedAt: ContinuousClock.Instant?
        var lastSign: ContinuousClock.Instant?
        var done = false
        var fired: String?
    }

    private let shut: @Sendable () -> Void
    private let limit: @Sendable () -> UInt64
    private let grace: Duration
    private let cap: Duration
    private let state = Mutex(State())
    private let ended = DispatchSemaphore(value: 0)

    /// `limit` is read at every check: the downtime limit may change mid-flight (PATCH /tasks/{id}).
    init(grace: Duration, cap: Duration, limit: @escaping @Sendable () -> UInt64, shut: @escaping @Sendable () -> Void) {
        self.grace = grace
        self.cap = cap
        self.limit = limit
        self.shut = shut
    }

    convenience init(socket: TCPSocket, transfer: TransferControl, grace: Duration, cap: Duration) {
        self.init(grace: grace, cap: cap, limit: { transfer.downtimeLimitMs.load(ordering: .relaxed) }, shut: { socket.shutdown() })
    }

    var fired: Bool { state.withLock { $0.fired != nil } }

    var timeout: PeerError {
        let why = state.withLock { $0.fired } ?? "did not answer"
        return PeerError(
            status: 0,
            message: "\(why) while the guest was paused (downtime limit \(limit()) ms); "
                + "the migration was given up and the guest runs on here")
    }

    func arm() {
        let now = ContinuousClock.now
        let armed = state.withLock { state -> Bool in
            guard state.armedAt == nil, !state.done else { return false }
            state.armedAt = now
            state.lastSign = now
            return true
        }
        guard armed else { return }
        let thread = Thread { [self] in watch() }
        thread.name = "switch-over watchdog"
        thread.start()
    }

    /// The destination showed it is alive.
    func touch() { state.withLock { if $0.armedAt != nil { $0.lastSign = .now } } }

    func disarm() {
        let wake = state.withLock { state -> Bool in
            defer { state.done = true }
            return !state.done && state.armedAt != nil
        }
        if wake { ended.signal() }
    }

    private var silenceAllowed: Duration { .milliseconds(Int64(limit())) + grace }

    private enum Verdict { case wait(until: ContinuousClock.Instant), fire, over }

    private func watch() {
        while true {
            let now = ContinuousClock.now
            let silence = silenceAllowed
            let verdict = state.withLock { state -> Verdict in
                guard !state.done, let armedAt = state.armedAt, let lastSign = state.lastSign else { return .over }
                let end = armedAt + silence - grace + cap
                if now >= end {
                    state.fired = "did not finish the switch-over within the downtime limit plus \(cap)"
                } else if now >= lastSign + silence {
                    state.fired = "gave no sign of life for the downtime limit plus \(grace)"
                } else {
                    return .wait(until: min(lastSign + silence, end))
                }
                return .fire
            }
            switch verdict {
            case .wait(let until):
                if ended.wait(timeout: .now() + max(0, (until - .now) / .seconds(1))) == .success { return }
            case .fire:
                shut()
                return
            case .over:
                return
            }
        }
    }
}

extension TCPSocket {
    /// The destination's next protocol line, past its `WAIT`s (each one a sign of life).
    func readReply(touching watchdog: SwitchOverWatchdog?) throws -> String? {
        while true {
            let line = try readLine()
            guard line == "WAIT" else { return line }
            watchdog?.touch()
        }
    }
}
