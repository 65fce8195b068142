import Foundation
import HTTPServer
import HTTPTestSupport
import Testing

/// Issue 11 item 17: the answers libmicrohttpd makes itself (bad request line, header too large,
/// URI too long, version not supported, bad Content-Length, bad chunk) are the API's one JSON error
/// shape, and requests whose body length is ambiguous (request smuggling) are refused.
@Suite("Protocol errors and request smuggling")
struct ProtocolErrorTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var raw: String
        var status: Int
        var testDescription: String { name }
    }

    static let big = String(repeating: "a", count: 40_000)

    static let libraryErrors: [Case] = [
        Case(name: "HTTP/2.0", raw: "GET /api/v1/hello HTTP/2.0\r\nHost: localhost\r\n\r\n", status: 505),
        Case(name: "HTTP/3.1", raw: "GET /api/v1/hello HTTP/3.1\r\nHost: localhost\r\n\r\n", status: 505),
        Case(name: "URI too long", raw: "GET /api/v1/\(big) HTTP/1.1\r\nHost: localhost\r\n\r\n", status: 414),
        Case(name: "header too large", raw: "GET /api/v1/hello HTTP/1.1\r\nHost: localhost\r\nX-Big: \(big)\r\n\r\n", status: 431),
        Case(
            name: "cookie too large", raw: "GET /api/v1/hello HTTP/1.1\r\nHost: localhost\r\nCookie: a=\(String(big.prefix(20_000)))\r\n\r\n",
            status: 431),
        Case(name: "Content-Length not a number", raw: "POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n", status: 400),
        Case(name: "Content-Length negative", raw: "POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n", status: 400),
        Case(
            name: "Content-Length beyond 64 bits",
            raw: "POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999999999999999999\r\n\r\n", status: 413),
        Case(
            name: "chunk size not hex",
            raw: "POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", status: 400),
        Case(name: "header line without a colon", raw: "GET /api/v1/hello HTTP/1.1\r\nHost: localhost\r\nno colon here\r\n\r\n", status: 400),
    ]

    @Test(arguments: libraryErrors)
    func libraryAnswersAreTheJSONErrorShape(_ test: Case) throws {
        let server = try TestServer { $0.connectionMemoryBytes = 32 << 10 }
        let connection = try RawHTTPConnection(port: server.port)
        try? connection.send(raw: Array(test.raw.utf8))
        let reply = try connection.readReply()
        #expect(reply.status == test.status, "\(test.name): \(reply.status) \(reply.text.prefix(200))")
        #expect(reply.header("Content-Type") == "application/json", "\(test.name)")
        #expect(reply.errorCode != nil, "\(test.name) answered \(reply.text.prefix(200))")
        #expect(reply.header("X-Content-Type-Options") == "nosniff", "\(test.name)")
        #expect(connection.peerClosed(within: 5), "\(test.name): the connection is closed after a protocol error")
        #expect(try httpRequest(port: server.port, "GET", "/api/v1/hello").status == 200)
    }

    static let smuggling: [Case] = [
        Case(
            name: "two different Content-Lengths",
            raw: "POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc", status: 400),
        Case(
            name: "Content-Length and chunked",
            raw: "POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400),
        Case(
            name: "chunked and Content-Length",
            raw: "POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", status: 400),
        Case(
            name: "a coding other than chunked",
            raw: "POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", status: 400),
        Case(
            name: "chunked twice",
            raw: "POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            status: 400),
        Case(
            name: "chunked behind an obsolete line fold",
            raw: "POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n", status: 400),
    ]

    @Test(arguments: smuggling)
    func ambiguousBodyLengthIs400AndCloses(_ test: Case) throws {
        let server = try TestServer()
        let connection = try RawHTTPConnection(port: server.port)
        try connection.send(raw: Array(test.raw.utf8) + Array("GET /api/v1/items/smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
        let reply = try connection.readReply()
        #expect(reply.status == test.status, "\(test.name): \(reply.status) \(reply.text)")
        #expect(reply.errorCode == "bad_request", "\(test.name): \(reply.text)")
        // Nothing after the refused request is read as a request of its own.
        #expect(connection.peerClosed(within: 5), "\(test.name)")
    }

    @Test func repeatedEqualContentLengthIsOneLength() throws {
        let server = try TestServer()
        let reply = try rawExchange(
            port: server.port, "POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
        ).reply
        #expect(reply.status == 200)
        #expect(reply.text == "abc")
    }
}
