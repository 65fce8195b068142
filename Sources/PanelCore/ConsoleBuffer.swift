import Synchronization

/// A guest's serial output: the last `capacity` bytes, addressed by absolute offsets so a
/// client resumes with `since=` exactly where it stopped; readers may wait for more (`ChangeFeed`).
public final class ConsoleBuffer: ChangeFeed {
    public let capacity: Int

    private struct State {
        var ring: [UInt8]
        /// Bytes ever written; the ring holds the last `min(total, capacity)`.
        var total: UInt64 = 0
        var waiters = Waiters()
    }

    private let state: Mutex<State>

    public init(capacity: Int = 1 << 20) {
        self.capacity = capacity
        state = Mutex(State(ring: [UInt8](repeating: 0, count: capacity)))
    }

    public var total: UInt64 { state.withLock { $0.total } }

    /// Appends guest output (the CPU thread calls this; it never blocks on clients).
    public func append(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        let woken = state.withLock { state in
            for byte in bytes.suffix(capacity) {
                state.ring[Int(state.total % UInt64(capacity))] = byte
                state.total += 1
            }
            if bytes.count > capacity { state.total += UInt64(bytes.count - capacity) }
            return state.waiters.takeBehind(state.total)
        }
        for wake in woken { wake() }
    }

    public struct ConsoleChunk: Sendable, Encodable, Equatable {
        public var data: String
        /// Ask for this offset next time.
        public var next: UInt64
        /// True when output between `since` and the oldest kept byte was dropped.
        public var truncated: Bool
    }

    public func read(since: UInt64, limit: Int = 64 << 10) -> ConsoleChunk {
        state.withLock { state in
            let oldest = state.total > UInt64(capacity) ? state.total - UInt64(capacity) : 0
            let start = min(max(since, oldest), state.total)
            let end = min(state.total, start + UInt64(limit))
            var bytes: [UInt8] = []
            bytes.reserveCapacity(Int(end - start))
            var offset = start
            while offset < end {
                bytes.append(state.ring[Int(offset % UInt64(capacity))])
                offset += 1
            }
            // A character split across two reads would turn into U+FFFD twice: hold its first bytes
            // back for the next read, unless they are all there is.
            let complete = Self.completeUTF8Prefix(bytes)
            if complete > 0 && complete < bytes.count { bytes.removeLast(bytes.count - complete) }
            return ConsoleChunk(data: String(decoding: bytes, as: UTF8.self), next: start + UInt64(bytes.count), truncated: since < oldest)
        }
    }

    /// The length of `bytes` without a UTF-8 sequence cut off at its end.
    static func completeUTF8Prefix(_ bytes: [UInt8]) -> Int {
        // The last byte that starts a sequence, among the last four.
        guard let lead = bytes.indices.reversed().prefix(4).first(where: { bytes[$0] & 0xc0 != 0x80 }) else { return bytes.count }
        let length =
            switch bytes[lead] {
            case 0xf0...0xf7: 4
            case 0xe0...0xef: 3
            case 0xc0...0xdf: 2
            default: 1
            }
        return lead + length > bytes.count ? lead : bytes.count
    }

    // MARK: ChangeFeed

    public func page(after cursor: UInt64) -> (page: ConsoleChunk, ready: Bool) {
        let chunk = read(since: cursor)
        return (chunk, chunk.next > cursor || chunk.truncated)
    }

    public func waitForChange(after cursor: UInt64, _ wake: @escaping @Sendable () -> Void) -> WaitToken {
        let token = state.withLock { state -> WaitToken? in
            state.total > cursor ? nil : state.waiters.add(after: cursor, wake)
        }
        guard let token else { wake(); return WaitToken(value: 0) }
        return token
    }

    public func cancelWait(_ token: WaitToken) { state.withLock { $0.waiters.remove(token) } }
}
