import Dispatch
import Foundation
import Synchronization

/// Every open connection and whether it is still waiting for a complete request.
///
/// libmicrohttpd's timeout counts idle time only, so a client sending a header line every few
/// seconds kept its connection forever, and enough such clients held every slot (slowloris). Here
/// a request must arrive whole — head and body — within `requestTimeout` of the connection
/// starting to wait for it; past that the socket is shut down and libmicrohttpd closes it. And
/// when slots run short (for the whole server, or for one client address), the connection that
/// has waited longest for its request is cut to make room, so a client with a real request still
/// gets in while the slots are held by ones that never finish (Apache's mod_reqtimeout and
/// nginx's `client_header_timeout` do the first; closing idle connections under pressure, the
/// second). A request that has arrived is never cut, however long its answer takes.
///
/// The configured connection limit is enforced here, not by libmicrohttpd: its thread pool splits
/// its limit evenly between the threads, each accepting on its own, so one thread could refuse a
/// client while the other had room (seen under ThreadSanitizer's slowness). libmicrohttpd gets the
/// whole limit for each thread; past the limit the new connection itself is cut. So is the limit
/// per client address: libmicrohttpd frees a slot only once it has closed a connection cut for
/// room, which a client's next connection could beat (seen under ThreadSanitizer too).
// @unchecked Sendable: `state` is only touched under `lock` (see `withState`)
final class ConnectionTracker: @unchecked Sendable {
    /// One connection from accept to close; libmicrohttpd keeps it in the socket context.
    final class Connection: Sendable {
        let socket: Int32
        let client: ClientAddress
        /// Monotonic nanoseconds when it began waiting for a request; 0 while one is answered.
        fileprivate let waitingSince: Atomic<UInt64>
        /// Shut down already (changed under the tracker's lock only).
        fileprivate let isCut = Atomic<Bool>(false)

        fileprivate init(socket: Int32, client: ClientAddress) {
            self.socket = socket
            self.client = client
            waitingSince = Atomic(ConnectionTracker.now())
        }

        /// The request is complete; what follows is answering it.
        func requestReceived() { waitingSince.store(0, ordering: .relaxed) }

        /// Its response went out; the connection now waits for the next request.
        func requestFinished() { waitingSince.store(ConnectionTracker.now(), ordering: .relaxed) }
    }

    private struct State {
        var open: [ObjectIdentifier: Connection] = [:]
        /// Connections not yet cut, in all and per client address.
        var counted = 0
        var perClient: [ClientAddress: Int] = [:]
    }

    /// A pthread lock rather than `Mutex`: libmicrohttpd's threads contend for it on every
    /// connection, and ThreadSanitizer cannot see `Mutex`'s contended hand-off (a futex in
    /// uninstrumented library code), so `make test-tsan` reported false races here.
    private let lock = NSLock()
    private var state = State()
    private let timeout: UInt64
    private let limit: Int
    private let perClientLimit: Int
    /// Cutting starts this many below the limits, so the next client always finds a slot while
    /// libmicrohttpd is still closing the connections cut for it.
    private let threshold: Int
    private let perClientThreshold: Int
    /// Connections cut, for the log and the tests.
    let cutCount = Atomic<Int>(0)

    init(requestTimeoutSeconds: Double, maxConnections: Int, maxConnectionsPerClient: Int) {
        timeout = UInt64(requestTimeoutSeconds * 1e9)
        limit = maxConnections
        perClientLimit = maxConnectionsPerClient
        threshold = maxConnections - max(1, maxConnections / 16)
        perClientThreshold = maxConnectionsPerClient - max(1, maxConnectionsPerClient / 16)
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    private func withState<T>(_ body: (inout State) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&state)
    }

    /// A new connection; may cut the longest-waiting ones to keep room.
    func opened(socket: Int32, client: ClientAddress) -> Connection {
        let connection = Connection(socket: socket, client: client)
        withState { state in
            state.open[ObjectIdentifier(connection)] = connection
            state.counted += 1
            state.perClient[client, default: 0] += 1
            if state.counted > threshold {
                cutLongestWaiting(&state) { $0 !== connection }
            }
            if state.perClient[client, default: 0] > perClientThreshold {
                cutLongestWaiting(&state) { $0 !== connection && $0.client == client }
            }
            // Every slot (of all, or of its address) holds a request being answered: this one is
            // turned away.
            if state.counted > limit || state.perClient[client, default: 0] > perClientLimit { cut(connection, &state) }
        }
        return connection
    }

    /// libmicrohttpd is about to close the socket: from here on it is never touched again.
    func closed(_ connection: Connection) {
        withState { state in
            guard state.open.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
            if !connection.isCut.load(ordering: .relaxed) { uncount(connection, &state) }
        }
    }

    /// Cuts every connection whose request is overdue; returns how many.
    @discardableResult
    func cutOverdue() -> Int {
        let now = Self.now()
        return withState { state in
            var count = 0
            for connection in state.open.values where !connection.isCut.load(ordering: .relaxed) {
                let since = connection.waitingSince.load(ordering: .relaxed)
                if since != 0, now > since, now - since > timeout {
                    cut(connection, &state)
                    count += 1
                }
            }
            return count
        }
    }

    private func cutLongestWaiting(_ state: inout State, where eligible: (Connection) -> Bool) {
        var oldest: Connection?
        var oldestSince = UInt64.max
        for connection in state.open.values where !connection.isCut.load(ordering: .relaxed) && eligible(connection) {
            let since = connection.waitingSince.load(ordering: .relaxed)
            if since != 0, since < oldestSince {
                oldest = connection
                oldestSince = since
            }
        }
        if let oldest { cut(oldest, &state) }
    }

    /// Shuts the socket down; libmicrohttpd sees the end of the stream and closes the connection.
    /// Safe because it happens under the lock `closed` takes, and libmicrohttpd closes the
    /// descriptor only after reporting the connection closed: it cannot have been reused.
    private func cut(_ connection: Connection, _ state: inout State) {
        connection.isCut.store(true, ordering: .relaxed)
        uncount(connection, &state)
        // Counted first: the shutdown wakes the client, which may look at the count at once.
        cutCount.add(1, ordering: .sequentiallyConsistent)
        shutdown(connection.socket, Int32(SHUT_RDWR))
    }

    private func uncount(_ connection: Connection, _ state: inout State) {
        state.counted -= 1
        let left = state.perClient[connection.client, default: 1] - 1
        state.perClient[connection.client] = left > 0 ? left : nil
    }
}
