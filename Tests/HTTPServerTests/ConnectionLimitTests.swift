import Foundation
import Testing

@testable import HTTPServer

/// The configured connection limit is the tracker's, across libmicrohttpd's pool threads (which
/// split their own limit evenly, so one thread refused a client while the other had room).
struct ConnectionLimitTests {
    /// A connected socket the tracker may shut down; closed by the test.
    private func socketPair() -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        return (fds[0], fds[1])
    }

    /// Past the limit — of all connections, or of one client address (libmicrohttpd's own count
    /// frees an address's slot only once it closed a connection cut for room, so the tracker
    /// enforces that limit itself) — the new connection is cut when every slot is answering.
    @Test(arguments: [(all: 4, perClient: 100), (all: 100, perClient: 4)])
    func pastTheLimitTheNewConnectionIsTurnedAwayWhenEveryRequestIsBeingAnswered(limits: (all: Int, perClient: Int)) {
        let tracker = ConnectionTracker(requestTimeoutSeconds: 30, maxConnections: limits.all, maxConnectionsPerClient: limits.perClient)
        var pairs: [(Int32, Int32)] = []
        defer { for (a, b) in pairs { close(a); close(b) } }
        var busy: [ConnectionTracker.Connection] = []
        for _ in 0..<4 {
            pairs.append(socketPair())
            let connection = tracker.opened(socket: pairs.last!.0, client: .unknown)
            connection.requestReceived()
            busy.append(connection)
        }
        #expect(tracker.cutCount.load(ordering: .relaxed) == 0)
        pairs.append(socketPair())
        _ = tracker.opened(socket: pairs.last!.0, client: .unknown)
        #expect(tracker.cutCount.load(ordering: .relaxed) == 1, "the fifth is cut, none of the four being answered")
        var byte: UInt8 = 0
        #expect(recv(pairs.last!.1, &byte, 1, Int32(MSG_DONTWAIT)) == 0, "its client sees the end of the stream")
        for (_, peer) in pairs.dropLast() {
            #expect(recv(peer, &byte, 1, Int32(MSG_DONTWAIT)) == -1 && errno == EAGAIN, "a request being answered is never cut")
        }
    }

    @Test func aConnectionWaitingForItsRequestMakesRoomFirst() {
        let tracker = ConnectionTracker(requestTimeoutSeconds: 30, maxConnections: 4, maxConnectionsPerClient: 100)
        var pairs: [(Int32, Int32)] = []
        defer { for (a, b) in pairs { close(a); close(b) } }
        for index in 0..<5 {
            pairs.append(socketPair())
            let connection = tracker.opened(socket: pairs.last!.0, client: .unknown)
            if index > 0 && index < 4 { connection.requestReceived() }
        }
        var byte: UInt8 = 0
        #expect(recv(pairs[0].1, &byte, 1, Int32(MSG_DONTWAIT)) == 0, "the idle first one was cut")
        #expect(recv(pairs[4].1, &byte, 1, Int32(MSG_DONTWAIT)) == -1 && errno == EAGAIN, "the new one got its slot")
    }
}
