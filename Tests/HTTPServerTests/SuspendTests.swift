import Foundation
import HTTPServer
import HTTPTestSupport
import Testing

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
