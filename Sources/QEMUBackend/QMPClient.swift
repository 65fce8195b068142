// A QMP client (QEMU's JSON monitor protocol, docs/interop/qmp-spec) over a connected
// Unix socket: the greeting, capability negotiation, commands matched to their replies
// by id, and asynchronous events handed to a handler as QEMU sends them — state
// changes arrive as events, never by polling, as libvirt does it. One reader thread per
// connection; callers block on their reply with a timeout.
import CProcessIO
import Foundation
import Synchronization

/// An asynchronous QMP event: SHUTDOWN, RESET, STOP, RESUME, MIGRATION, …
public struct QMPEvent: Sendable, Equatable {
    public let name: String
    public let data: QMPValue
    /// QEMU's own timestamp of the event.
    public let timestamp: Date?
}

public enum QMPError: Error, CustomStringConvertible, Sendable, Equatable {
    /// QEMU answered with an error: its class (GenericError, CommandNotFound, …) and text.
    case commandFailed(command: String, errorClass: String, description: String)
    /// No reply within the timeout; the command may still run in QEMU.
    case timedOut(command: String, seconds: Double)
    /// The connection is gone (QEMU exited, or closed the monitor).
    case disconnected(reason: String)
    /// Something that is not QMP arrived.
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .commandFailed(let command, let errorClass, let description):
            return "QMP \(command): \(description) (\(errorClass))"
        case .timedOut(let command, let seconds):
            return "QMP \(command): no reply within \(seconds) s"
        case .disconnected(let reason): return "QMP connection closed: \(reason)"
        case .protocolViolation(let what): return "QMP protocol violation: \(what)"
        }
    }
}

public final class QMPClient: Sendable {
    /// What QEMU said when the connection opened.
    public let version: QEMUVersion
    public let capabilities: [String]
    private let connection: QMPConnection

    /// Takes ownership of `socket` (connected to QEMU's monitor), reads the greeting and leaves
    /// capability negotiation mode (`qmp_capabilities`). `onGreeting` runs as soon as the greeting
    /// came (QEMU's main loop runs: the negotiation's round trip can take a starting QEMU ~7 ms).
    /// `onEvent` is called in order on a serial queue of its own, so it may issue commands;
    /// `onDisconnect` once, after the last event.
    public init(
        socket: Int32, timeout: Duration = .seconds(10),
        onGreeting: () -> Void = {},
        onEvent: @escaping @Sendable (QMPEvent) -> Void = { _ in },
        onDisconnect: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        connection = QMPConnection(fd: socket, onEvent: onEvent, onDisconnect: onDisconnect)
        connection.start()
        do {
            let greeting = try connection.waitForGreeting(timeout: timeout)
            guard let version = QEMUVersion(qmp: greeting["version"] ?? .null) else {
                throw QMPError.protocolViolation("greeting without a version")
            }
            self.version = version
            capabilities = greeting["capabilities"]?.arrayValue?.compactMap(\.stringValue) ?? []
            onGreeting()
            _ = try connection.execute("qmp_capabilities", nil, timeout: timeout, passing: nil)
        } catch {
            connection.close()
            throw error
        }
    }

    deinit { connection.close() }

    /// Runs `command` and returns its `return` value; QEMU's refusal is `QMPError.commandFailed`.
    /// `passing` attaches a descriptor to the command (SCM_RIGHTS), as `getfd` needs.
    @discardableResult
    public func execute(
        _ command: String, _ arguments: [String: QMPValue]? = nil, timeout: Duration = .seconds(30),
        passing descriptor: Int32? = nil
    ) throws -> QMPValue {
        try connection.execute(command, arguments, timeout: timeout, passing: descriptor)
    }

    /// Why the connection closed, or nil while it is open.
    public var closedReason: String? { connection.closedReason }

    /// Closes the connection; pending commands fail with `disconnected`. Idempotent.
    public func close() { connection.close() }
}

/// The connection's shared state: the socket, the replies awaited, the reader thread.
private final class QMPConnection: Sendable {
    private struct State {
        var pending: [String: QMPReply] = [:]
        var nextID = 0
        var closed: String?
        var greeting: QMPValue?
        var readerStarted = false
        var shutDown = false
    }

    private let fd: Int32
    private let state = Mutex(State())
    private let sending = Mutex(())
    private let greetingArrived = DispatchSemaphore(value: 0)
    private let readerDone = DispatchSemaphore(value: 0)
    private let closing = Atomic<Bool>(false)
    private let events = DispatchQueue(label: "emupanel.qmp.events")
    private let onEvent: @Sendable (QMPEvent) -> Void
    private let onDisconnect: @Sendable (String) -> Void
    /// A reply or event larger than this is not QMP (QEMU's largest, query-machines, is ~20 KiB).
    private static let maximumMessageBytes = 64 << 20

    init(fd: Int32, onEvent: @escaping @Sendable (QMPEvent) -> Void, onDisconnect: @escaping @Sendable (String) -> Void) {
        self.fd = fd
        self.onEvent = onEvent
        self.onDisconnect = onDisconnect
    }

    func start() {
        state.withLock { $0.readerStarted = true }
        let thread = Thread { [self] in readLoop() }
        thread.name = "emupanel-qmp"
        thread.start()
    }

    var closedReason: String? { state.withLock { $0.closed } }

    func waitForGreeting(timeout: Duration) throws -> QMPValue {
        guard greetingArrived.wait(timeout: .now() + timeout.seconds) == .success else {
            throw QMPError.timedOut(command: "greeting", seconds: timeout.seconds)
        }
        return try state.withLock { state in
            if let greeting = state.greeting { return greeting }
            throw QMPError.disconnected(reason: state.closed ?? "no greeting")
        }
    }

    func execute(
        _ command: String, _ arguments: [String: QMPValue]?, timeout: Duration, passing descriptor: Int32?
    ) throws
        -> QMPValue
    {
        let reply = QMPReply()
        let id = try state.withLock { state -> String in
            if let closed = state.closed { throw QMPError.disconnected(reason: closed) }
            state.nextID += 1
            let id = "emupanel-\(state.nextID)"
            state.pending[id] = reply
            return id
        }
        var message: [String: QMPValue] = ["execute": .string(command), "id": .string(id)]
        if let arguments { message["arguments"] = .object(arguments) }
        do {
            var bytes = try JSONEncoder().encode(QMPValue.object(message))
            bytes.append(0x0a)
            try sending.withLock { _ in
                try bytes.withUnsafeBytes { raw in
                    if let descriptor {
                        // The descriptor rides on the first byte; the rest follows plainly.
                        let n = emupanel_send_with_fd(fd, raw.baseAddress!, raw.count, descriptor)
                        guard n >= 0 else { throw QEMUError.io(operation: "QMP \(command)", errno: errno) }
                        try UnixSocket.send(fd, UnsafeRawBufferPointer(rebasing: raw[n...]))
                    } else {
                        try UnixSocket.send(fd, raw)
                    }
                }
            }
        } catch {
            state.withLock { _ = $0.pending.removeValue(forKey: id) }
            if let closed = closedReason { throw QMPError.disconnected(reason: closed) }
            throw error
        }
        guard let answer = reply.wait(timeout: timeout) else {
            state.withLock { _ = $0.pending.removeValue(forKey: id) }
            throw QMPError.timedOut(command: command, seconds: timeout.seconds)
        }
        let response = try answer.get()
        if let error = response["error"] {
            throw QMPError.commandFailed(
                command: command, errorClass: error["class"]?.stringValue ?? "GenericError",
                description: error["desc"]?.stringValue ?? "unknown error")
        }
        return response["return"] ?? .object([:])
    }

    func close() {
        guard !closing.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // Wakes the reader (recv returns 0), which fails what is pending and ends.
        shutdown(fd, Int32(SHUT_RDWR))
        if state.withLock({ $0.readerStarted }) { readerDone.wait() }
        Glibc.close(fd)
    }

    private func readLoop() {
        var buffer: [UInt8] = []
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 8)
        defer { chunk.deallocate() }
        var reason = "QEMU closed the monitor connection"
        reading: while true {
            let n: Int
            do { n = try UnixSocket.receive(fd, into: chunk) } catch {
                reason = "\(error)"
                break
            }
            if n == 0 { break }
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[..<n]))
            var start = 0
            while let newline = buffer[start...].firstIndex(of: 0x0a) {
                if let violation = handle(buffer[start..<newline]) {
                    reason = violation
                    break reading
                }
                start = newline + 1
            }
            buffer.removeFirst(start)
            if buffer.count > Self.maximumMessageBytes {
                reason = "a message longer than \(Self.maximumMessageBytes) bytes"
                break
            }
        }
        finish(reason)
    }

    /// Dispatches one line; returns a reason to drop the connection, or nil.
    private func handle(_ line: ArraySlice<UInt8>) -> String? {
        let trimmed = line.last == 0x0d ? line.dropLast() : line
        guard !trimmed.isEmpty else { return nil }
        guard let message = try? JSONDecoder().decode(QMPValue.self, from: Data(trimmed)), message.objectValue != nil else {
            return "not JSON: \(String(decoding: trimmed.prefix(200), as: UTF8.self))"
        }
        if let greeting = message["QMP"] {
            state.withLock { $0.greeting = greeting }
            greetingArrived.signal()
        } else if let name = message["event"]?.stringValue {
            let seconds = message["timestamp"]?["seconds"]?.doubleValue
            let micro = message["timestamp"]?["microseconds"]?.doubleValue
            let event = QMPEvent(
                name: name, data: message["data"] ?? .object([:]),
                timestamp: seconds.map { Date(timeIntervalSince1970: $0 + (micro ?? 0) / 1e6) })
            events.async { [onEvent] in onEvent(event) }
        } else if let id = message["id"]?.stringValue {
            state.withLock { $0.pending.removeValue(forKey: id) }?.complete(.success(message))
        }
        // A reply without an id answers a line QEMU could not parse; ours always parse.
        return nil
    }

    private func finish(_ reason: String) {
        let pending = state.withLock { state -> [QMPReply] in
            state.closed = reason
            defer { state.pending.removeAll() }
            return Array(state.pending.values)
        }
        for reply in pending { reply.complete(.failure(QMPError.disconnected(reason: reason))) }
        greetingArrived.signal()
        events.async { [onDisconnect] in onDisconnect(reason) }
        readerDone.signal()
    }
}

/// One awaited reply: filled by the reader thread, waited for by the caller.
private final class QMPReply: Sendable {
    private let result = Mutex<Result<QMPValue, Error>?>(nil)
    private let arrived = DispatchSemaphore(value: 0)

    func complete(_ outcome: Result<QMPValue, Error>) {
        result.withLock { $0 = outcome }
        arrived.signal()
    }

    func wait(timeout: Duration) -> Result<QMPValue, Error>? {
        guard arrived.wait(timeout: .now() + timeout.seconds) == .success else { return nil }
        return result.withLock { $0 }
    }
}

extension Duration {
    /// Seconds as a Double, for Dispatch deadlines and messages.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
