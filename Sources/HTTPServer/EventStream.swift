import Synchronization

/// The server side of one Server-Sent Events connection.
///
/// Producers on any thread call `send`; libmicrohttpd pulls the bytes on its own
/// thread. With nothing to send the connection is suspended (no thread, no busy
/// loop) and resumed by the next `send`, heartbeat or `close`.
public final class EventStream: Sendable {
    /// Past this many unread bytes the client is too slow: the stream is closed.
    public static let maxBufferedBytes = 4 << 20

    private struct State {
        var pending: [UInt8] = []
        var readOffset = 0
        var closed = false
        var suspended = false
        var connection: (any SuspendableConnection)?
        var terminationHandlers: [@Sendable () -> Void] = []
        var terminated = false
    }

    private let state = Mutex(State())

    public init() {}

    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Sends one event in the `text/event-stream` format; multi-line data is split as the format requires.
    public func send(id: String? = nil, event: String? = nil, data: String) {
        var text = ""
        if let id { text += "id: \(Self.singleLine(id))\n" }
        if let event { text += "event: \(Self.singleLine(event))\n" }
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) {
            text += "data: \(line)\n"
        }
        text += "\n"
        append(Array(text.utf8))
    }

    /// Sends a comment line; clients ignore it, proxies and dead peers notice it.
    public func comment(_ text: String = "") {
        append(Array(": \(Self.singleLine(text))\n\n".utf8))
    }

    /// Ends the stream once what is queued has been sent.
    public func close() {
        state.withLock { state in
            state.closed = true
            Self.wake(&state)
        }
    }

    /// Runs when the stream is finished: closed by the server or the client went away.
    public func onTermination(_ handler: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state -> Bool in
            if state.terminated { return true }
            state.terminationHandlers.append(handler)
            return false
        }
        if runNow { handler() }
    }

    private func append(_ bytes: [UInt8]) {
        state.withLock { state in
            guard !state.closed else { return }
            if state.pending.count - state.readOffset + bytes.count > Self.maxBufferedBytes {
                state.closed = true
            } else {
                state.pending.append(contentsOf: bytes)
            }
            Self.wake(&state)
        }
    }

    private static func wake(_ state: inout State) {
        if state.suspended, let connection = state.connection {
            state.suspended = false
            connection.resume()
        }
    }

    private static func singleLine(_ text: String) -> String {
        String(text.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
    }

    // MARK: - Server side

    enum ReadResult { case bytes(Int), end, suspended }

    func attach(_ connection: any SuspendableConnection) {
        state.withLock { $0.connection = connection }
    }

    /// Copies pending bytes into `buffer`; with none, suspends the connection inside the lock,
    /// so a concurrent `send` either sees the suspension and resumes it or is seen by this read.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> ReadResult {
        state.withLock { state in
            let available = state.pending.count - state.readOffset
            if available > 0 {
                let count = min(available, buffer.count)
                state.pending.withUnsafeBytes { source in
                    buffer.baseAddress!.copyMemory(from: source.baseAddress! + state.readOffset, byteCount: count)
                }
                state.readOffset += count
                if state.readOffset == state.pending.count {
                    state.pending.removeAll(keepingCapacity: state.pending.capacity <= 64 << 10)
                    state.readOffset = 0
                }
                return .bytes(count)
            }
            if state.closed { return .end }
            guard let connection = state.connection else { return .end }
            state.suspended = true
            connection.suspend()
            return .suspended
        }
    }

    /// The connection is gone: no more resumes, run the termination handlers.
    func detach() {
        let handlers = state.withLock { state -> [@Sendable () -> Void] in
            state.connection = nil
            state.closed = true
            state.suspended = false
            guard !state.terminated else { return [] }
            state.terminated = true
            defer { state.terminationHandlers.removeAll() }
            return state.terminationHandlers
        }
        for handler in handlers { handler() }
    }
}

/// A connection the server can park and wake; implemented by the libmicrohttpd bridge.
protocol SuspendableConnection: Sendable {
    func suspend()
    func resume()
}
