import Foundation
import HTTPServer
import HTTPTestSupport
import Testing

/// Issue 11 item 13: what a client can make the server buffer is bounded per route and for the
/// whole server, and decided from the head where it can be.
@Suite("Body limits", .serialized)
struct BodyLimitTests {
    @Test func aRouteWithASmallerLimitRefusesFromTheHead() throws {
        let test = try TestServer()
        // Only the head: a 413 can only come from it.
        let refused = try rawExchange(port: test.port, "POST /api/v1/small HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n").reply
        #expect(refused.status == 413)
        #expect(refused.errorCode == "payload_too_large")
        #expect(refused.text.contains("4096"))

        let chunked = try RawHTTPConnection(port: test.port)
        var raw = Array("POST /api/v1/small HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        for _ in 0..<3 { raw += Array("800\r\n".utf8) + [UInt8](repeating: 65, count: 0x800) + Array("\r\n".utf8) }
        try chunked.send(raw: raw + Array("0\r\n\r\n".utf8))
        #expect(try chunked.readReply().status == 413)

        let fits = try httpRequest(port: test.port, "POST", "/api/v1/small", body: [UInt8](repeating: 1, count: 4096))
        #expect(fits.status == 200)
        #expect(try fits.json()["bytes"] as? Int == 4096)
    }

    @Test func bodiesBeyondTheServersBudgetAreRefusedUntilItFrees() throws {
        let test = try TestServer {
            $0.maxBodyBytes = 40 << 10
            $0.maxBufferedBodyBytes = 64 << 10
        }
        let size = 30 << 10
        // Two bodies of 30 KiB half sent: 60 KiB of the 64 KiB budget are promised to them.
        let first = try RawHTTPConnection(port: test.port)
        let second = try RawHTTPConnection(port: test.port)
        for connection in [first, second] {
            try connection.send(
                raw: Array("POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(size)\r\n\r\n".utf8)
                    + [UInt8](repeating: 66, count: size / 2))
        }
        // The server reads heads on its own threads: wait until both promises are made.
        try waitUntil { test.server.bufferedBodyBytes == 2 * size }
        // A third cannot be promised its 30 KiB: refused from its head, nothing buffered.
        let busy = try rawExchange(port: test.port, "POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(size)\r\n\r\n").reply
        #expect(busy.status == 503)
        #expect(busy.errorCode == "busy")
        #expect(busy.header("Retry-After") != nil)
        // Small requests still pass, and once the first two finish the budget is free again.
        #expect(try httpRequest(port: test.port, "POST", "/api/v1/echo", body: [1, 2, 3]).status == 200)
        for connection in [first, second] {
            try connection.send(raw: [UInt8](repeating: 66, count: size / 2))
            let reply = try connection.readReply()
            #expect(reply.status == 200)
            #expect(reply.body.count == size)
        }
        let later = try httpRequest(port: test.port, "POST", "/api/v1/echo", body: [UInt8](repeating: 7, count: size))
        #expect(later.status == 200)
        try waitUntil { test.server.bufferedBodyBytes == 0 }
    }

    @Test func aChunkedBodyBeyondTheBudgetIsRefusedAndTheBudgetReturned() throws {
        let test = try TestServer {
            $0.maxBodyBytes = 32 << 10
            $0.maxBufferedBodyBytes = 48 << 10
        }
        // 30 KiB promised to a body still arriving...
        let holder = try RawHTTPConnection(port: test.port)
        try holder.send(raw: Array("POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(30 << 10)\r\n\r\n".utf8))
        try waitUntil { test.server.bufferedBodyBytes == 30 << 10 }
        // ...so a chunked one (its size unknown from the head) runs out of budget on the way.
        let connection = try RawHTTPConnection(port: test.port)
        var raw = Array("POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        for _ in 0..<12 { raw += Array("800\r\n".utf8) + [UInt8](repeating: 65, count: 0x800) + Array("\r\n".utf8) }
        try connection.send(raw: raw + Array("0\r\n\r\n".utf8))
        let reply = try connection.readReply()
        #expect(reply.status == 503)
        #expect(reply.errorCode == "busy")
        #expect(reply.header("Retry-After") == "1")
        try waitUntil { test.server.bufferedBodyBytes == 30 << 10 }
        try holder.send(raw: [UInt8](repeating: 9, count: 30 << 10))
        #expect(try holder.readReply().body.count == 30 << 10)
        try waitUntil { test.server.bufferedBodyBytes == 0 }
        #expect(try httpRequest(port: test.port, "POST", "/api/v1/echo", body: [UInt8](repeating: 1, count: 24 << 10)).status == 200)
    }
}
