import Foundation
import HTTPServer
import HTTPTestSupport
import Testing

/// Issue 11 item 12 (slowloris): libmicrohttpd's timeout counts idle time only, so a header line
/// every few seconds held a connection forever, and enough of them filled every slot. A request now
/// has a deadline for its whole head and body, and connections still waiting for a request make
/// room for new ones when slots run short.
@Suite("Slow clients", .serialized)
struct SlowClientTests {
    /// Sends a header line every `interval` until the server closes; the time that took, or nil
    /// when the connection was still open after `limit`.
    func trickleHeaders(port: UInt16, interval: Double, limit: Double) throws -> Double? {
        let connection = try RawHTTPConnection(port: port)
        let start = Date()
        try connection.send(raw: Array("GET /api/v1/hello HTTP/1.1\r\nHost: localhost\r\n".utf8))
        var line = 0
        while Date().timeIntervalSince(start) < limit {
            // The pace is the attack itself, not synchronisation: each wait doubles as the check.
            if connection.peerClosed(within: interval) { return Date().timeIntervalSince(start) }
            line += 1
            do { try connection.send(raw: Array("X-Slow-\(line): y\r\n".utf8)) } catch { return Date().timeIntervalSince(start) }
        }
        return nil
    }

    @Test func aHeadTrickledLineByLineIsCutAtTheDeadline() throws {
        let test = try TestServer {
            $0.requestTimeoutSeconds = 1
            $0.connectionTimeoutSeconds = 60
        }
        // Every line comes well within the idle timeout; only a deadline for the whole head ends it.
        let closedAfter = try trickleHeaders(port: test.port, interval: 0.2, limit: 8)
        let seconds = try #require(closedAfter, "a trickled head was still open after 8 s")
        #expect(seconds >= 0.9)
        #expect(test.server.cutConnections == 1)
        #expect(try httpRequest(port: test.port, "GET", "/api/v1/hello").status == 200)
    }

    @Test func aBodyTrickledByteByByteIsCutAtTheDeadline() throws {
        let test = try TestServer { $0.requestTimeoutSeconds = 1 }
        let connection = try RawHTTPConnection(port: test.port)
        try connection.send(raw: Array("POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n".utf8))
        let start = Date()
        var closed = false
        while Date().timeIntervalSince(start) < 8 {
            if connection.peerClosed(within: 0.2) { closed = true; break }
            do { try connection.send(raw: [65]) } catch { closed = true; break }
        }
        #expect(closed, "a trickled body was still open after 8 s")
    }

    @Test func aFinishedRequestIsNotCutWhileItWaits() throws {
        let test = try TestServer { $0.requestTimeoutSeconds = 1 }
        // A long poll parks after its request arrived: the deadline covers receiving, not answering.
        let reply = try httpRequest(port: test.port, "GET", "/api/v1/wait?s=2")
        #expect(reply.status == 200)
        #expect(reply.text == "timeout")
    }

    /// The attack of the issue, scaled down: several source addresses hold every slot with heads
    /// that never finish. New clients, from those addresses or others, still get answers.
    @Test func healthAnswersWhileSlowHeadsHoldEverySlot() throws {
        let addresses = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
        let test = try TestServer {
            $0.maxConnections = 64
            $0.maxConnectionsPerIP = 16
            $0.requestTimeoutSeconds = 30
        }
        var held: [RawHTTPConnection] = []
        for address in addresses {
            for _ in 0..<16 {
                guard let connection = try? RawHTTPConnection(port: test.port, source: address) else { continue }
                try? connection.send(raw: Array("GET /api/v1/hello HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".utf8))
                held.append(connection)
            }
        }
        #expect(held.count >= 48, "the attack could open \(held.count) connections")
        for source in ["127.0.0.9", "127.0.0.2", "127.0.0.1"] {
            let start = Date()
            let reply = try httpRequest(port: test.port, "GET", "/api/v1/hello", source: source)
            #expect(reply.status == 200, "from \(source)")
            #expect(Date().timeIntervalSince(start) < 5, "from \(source)")
        }
        #expect(test.server.cutConnections >= 3, "room was made by cutting the slow heads")
        withExtendedLifetime(held) {}
    }
}
