import Foundation
import HTTPTestSupport
import Testing

@testable import HTTPServer

@Suite("Long poll, event streams and stopping")
struct SuspendTests {
    @Test func longPollTimesOut() throws {
        let test = try TestServer()
        let start = Date()
        let reply = try httpRequest(port: test.port, "GET", "/api/v1/wait?s=1")
        let elapsed = Date().timeIntervalSince(start)
        #expect(reply.text == "timeout")
        #expect(elapsed >= 0.9)
    }

    @Test func longPollWakesWhenCompleted() throws {
        let test = try TestServer()
        let connection = try RawHTTPConnection(port: test.port)
        try connection.send("GET", "/api/v1/wait?s=20")
        try waitUntil { test.hooks.waiting.withLock { !$0.isEmpty } }
        test.hooks.wakeAll("woken")
        let reply = try connection.readReply()
        #expect(reply.text == "woken")
        // The connection stays usable after a resumed request.
        #expect(try connection.request("GET", "/api/v1/hello").status == 200)
    }

    @Test func manyParkedLongPollsAllWake() throws {
        let test = try TestServer()
        let connections = try (0..<20).map { _ in try RawHTTPConnection(port: test.port) }
        for connection in connections { try connection.send("GET", "/api/v1/wait?s=20") }
        try waitUntil { test.hooks.waiting.withLock { $0.count == 20 } }
        test.hooks.wakeAll("all")
        for connection in connections { #expect(try connection.readReply().text == "all") }
    }

    @Test func eventStreamDeliversEventsAndHeartbeats() throws {
        let test = try TestServer { $0.heartbeatSeconds = 0.3 }
        let connection = try RawHTTPConnection(port: test.port)
        try connection.send("GET", "/api/v1/stream")
        #expect(try readUntilLine(connection) { $0.hasPrefix("HTTP/1.1 200") } != nil)
        #expect(try readUntilLine(connection) { $0 == "data: hello" } != nil)
        try waitUntil { test.hooks.streams.withLock { !$0.isEmpty } }
        test.hooks.broadcast("second\nline")
        #expect(try readUntilLine(connection) { $0 == "data: second" } != nil)
        #expect(try connection.readLine()?.hasSuffix("data: line") == true)
        #expect(try readUntilLine(connection) { $0.hasPrefix(":") } != nil, "a heartbeat comment arrives")
    }

    @Test func eventStreamNoticesAClientLeaving() throws {
        let test = try TestServer { $0.heartbeatSeconds = 0.2 }
        do {
            let connection = try RawHTTPConnection(port: test.port)
            try connection.send("GET", "/api/v1/stream")
            #expect(try readUntilLine(connection) { $0 == "data: hello" } != nil)
        }
        try waitUntil(seconds: 10) { test.hooks.terminatedStreams.load(ordering: .sequentiallyConsistent) == 1 }
    }

    @Test func stopWithClientsConnected() throws {
        let test = try TestServer()
        let poll = try RawHTTPConnection(port: test.port)
        try poll.send("GET", "/api/v1/wait?s=30")
        let stream = try RawHTTPConnection(port: test.port)
        try stream.send("GET", "/api/v1/stream")
        let idle = try RawHTTPConnection(port: test.port)
        #expect(try readUntilLine(stream) { $0 == "data: hello" } != nil)
        try waitUntil { test.hooks.waiting.withLock { !$0.isEmpty } }

        let start = Date()
        test.server.stop()
        #expect(Date().timeIntervalSince(start) < 5)
        let reply = try poll.readReply()
        #expect(reply.status == 503)
        #expect(reply.errorCode == "shutting_down")
        #expect(stream.peerClosed(within: 5))
        #expect(idle.peerClosed(within: 5))
        #expect(throws: (any Error).self) { try httpRequest(port: test.port, "GET", "/api/v1/hello") }
    }

    /// A request that passed the server's `stopping` check but parks only after `stop()` found
    /// nothing parked must wake itself: stopping the daemon with a connection still suspended
    /// makes libmicrohttpd abort the process (so a regression crashes this test run).
    @Test(arguments: ["/api/v1/late/wait", "/api/v1/late/stream"])
    func requestParkingAfterStopBeganIsWoken(path: String) throws {
        let test = try TestServer()
        let client = try RawHTTPConnection(port: test.port)
        try client.send("GET", path)
        try waitUntil { test.hooks.lateEntered.load(ordering: .sequentiallyConsistent) == 1 }
        let stopped = DispatchSemaphore(value: 0)
        let server = test.server
        Thread {
            server.stop(); stopped.signal()
        }.start()
        // stop() finds nothing parked and waits for the daemon's threads, one held in the handler.
        try waitUntil { server.stopping.load(ordering: .sequentiallyConsistent) }
        test.hooks.lateRelease.store(true, ordering: .sequentiallyConsistent)
        #expect(stopped.wait(timeout: .now() + 5) == .success)
        let received = receivedUntilClosed(client)
        #expect(received != nil, "the client was left hanging")
        if path.hasSuffix("wait"), let status = received?.split(separator: "\n").first {
            #expect(status.contains(" 503"))
        }
    }

    /// Many long polls and event streams arriving while `stop()` runs: the process survives and
    /// every client is answered (503, or its stream or connection closed) instead of hanging.
    @Test func stopRacingManyLongPollsAndStreams() throws {
        for round in 0..<4 {
            let test = try TestServer()
            let clients = try (0..<48).map { _ in try RawHTTPConnection(port: test.port) }
            let stopped = DispatchSemaphore(value: 0)
            let server = test.server
            let delay = UInt32(round) * 3_000
            Thread {
                usleep(delay); server.stop(); stopped.signal()
            }.start()
            for (index, client) in clients.enumerated() {
                // Sends may fail once the daemon is gone; the reads below still must end.
                try? client.send("GET", index.isMultiple(of: 2) ? "/api/v1/wait?s=30" : "/api/v1/stream")
            }
            #expect(stopped.wait(timeout: .now() + 10) == .success)
            for (index, client) in clients.enumerated() {
                let received = receivedUntilClosed(client)
                #expect(received != nil, "round \(round): client \(index) was left hanging")
                guard let status = received?.split(separator: "\n").first else { continue }
                if index.isMultiple(of: 2) {
                    #expect(status.contains(" 503"), "round \(round): long poll \(index) got \(status)")
                } else {
                    #expect(status.contains(" 200") || status.contains(" 503"), "round \(round): stream \(index) got \(status)")
                }
            }
        }
    }
}

/// What the server sends until it ends the connection (EOF or reset); nil if it stays open.
func receivedUntilClosed(_ connection: RawHTTPConnection, seconds: Double = 8) -> String? {
    connection.setTimeout(seconds)
    let start = Date()
    var lines: [String] = []
    while true {
        do {
            guard let line = try connection.readLine() else { return lines.joined(separator: "\n") }
            lines.append(line)
        } catch {
            // A reset ends the connection as surely as EOF; only a timeout means it hung.
            return Date().timeIntervalSince(start) < seconds - 0.5 ? lines.joined(separator: "\n") : nil
        }
    }
}

func waitUntil(seconds: Double = 5, _ condition: () -> Bool) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition() {
        guard Date() < deadline else { throw TestHTTPError.timeout }
        usleep(10_000)
    }
}

/// Reads lines until one matches; nil if the stream ends first.
func readUntilLine(_ connection: RawHTTPConnection, _ match: (String) -> Bool) throws -> String? {
    for _ in 0..<1000 {
        guard let line = try connection.readLine() else { return nil }
        if match(line) { return line }
    }
    return nil
}
