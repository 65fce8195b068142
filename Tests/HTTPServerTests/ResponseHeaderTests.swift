import Foundation
import HTTPServer
import HTTPTestSupport
import Testing

/// Issue 11 item 18: security headers on every response, `no-store` on the API, `Host` checked
/// against this server (DNS rebinding), and no dot files from the public directory.
@Suite("Response headers, Host and dot files")
struct ResponseHeaderTests {
    func expectCommonHeaders(_ reply: RawHTTPConnection.Reply, _ what: String) {
        #expect(reply.header("X-Content-Type-Options") == "nosniff", "\(what)")
        #expect(reply.header("X-Frame-Options") == "DENY", "\(what)")
        #expect(reply.header("Referrer-Policy") == "no-referrer", "\(what)")
        let csp = reply.header("Content-Security-Policy") ?? ""
        #expect(csp.contains("frame-ancestors 'none'"), "\(what): \(csp)")
        #expect(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "\(what): \(csp)")
    }

    @Test func everyAPIAnswerCarriesTheHeadersAndNoStore() throws {
        let test = try TestServer()
        let replies: [(String, RawHTTPConnection.Reply)] = [
            ("200", try httpRequest(port: test.port, "GET", "/api/v1/hello")),
            ("404", try httpRequest(port: test.port, "GET", "/api/v1/nope")),
            ("405", try httpRequest(port: test.port, "PUT", "/api/v1/hello")),
            ("501", try httpRequest(port: test.port, "BREW", "/api/v1/hello")),
            ("401 from the head", try httpRequest(port: test.port, "POST", "/api/v1/private/echo", body: [1])),
            ("413 from the head", try httpRequest(port: test.port, "POST", "/api/v1/small", body: [UInt8](repeating: 0, count: 5000))),
            ("long poll", try httpRequest(port: test.port, "GET", "/api/v1/wait?s=0")),
            ("204", try httpRequest(port: test.port, "DELETE", "/api/v1/items/1")),
        ]
        for (what, reply) in replies {
            expectCommonHeaders(reply, what)
            #expect(reply.header("Cache-Control") == "no-store", "\(what)")
        }
        let stream = try RawHTTPConnection(port: test.port)
        try stream.send("GET", "/api/v1/stream")
        var head: [String] = []
        while let line = try stream.readLine(), !line.isEmpty { head.append(line.lowercased()) }
        #expect(head.contains("x-content-type-options: nosniff"))
        #expect(head.contains("cache-control: no-store"))
    }

    @Test func staticFilesCarryTheHeadersWithAPolicyWithoutInlineScript() throws {
        let test = try TestServer()
        let index = try httpRequest(port: test.port, "GET", "/")
        expectCommonHeaders(index, "/")
        let csp = try #require(index.header("Content-Security-Policy"))
        #expect(csp.contains("default-src 'self'"))
        #expect(csp.contains("script-src 'self'"))
        #expect(csp.contains("object-src 'none'"))
        #expect(index.header("Cache-Control") == "no-cache", "static files are revalidated, not refused to caches")
        let etag = try #require(index.header("ETag"))
        let notModified = try httpRequest(port: test.port, "GET", "/", headers: ["If-None-Match": etag])
        #expect(notModified.status == 304)
        expectCommonHeaders(notModified, "304")
        expectCommonHeaders(try httpRequest(port: test.port, "GET", "/nope.js"), "static 404")
    }

    @Test(arguments: [
        "localhost", "LOCALHOST", "localhost.", "127.0.0.1", "localhost:1234", "127.0.0.1:80", "[::1]", "[::1]:8080",
        "panel.example", "Panel.Example:443",
    ])
    func hostsThatNameThisServerAreServed(host: String) throws {
        let test = try TestServer { $0.hostNames = ["panel.example"] }
        let reply = try httpRequest(port: test.port, "GET", "/api/v1/hello", headers: ["Host": host])
        #expect(reply.status == 200, "Host: \(host) answered \(reply.status) \(reply.text)")
    }

    @Test(arguments: [
        "evil.example", "evil.example:8080", "localhost.evil.example", "127.0.0.1.nip.io", "10.9.8.7", "[::2]",
        "panel.example.evil", "local host", "", "localhost@evil.example",
    ])
    func otherHostsAreMisdirected(host: String) throws {
        let test = try TestServer { $0.hostNames = ["panel.example"] }
        for path in ["/api/v1/hello", "/", "/api/v1/nope"] {
            let reply = try rawExchange(port: test.port, "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\r\n").reply
            if host.isEmpty {
                #expect(reply.status == 400, "empty Host on \(path)")
            } else {
                #expect(reply.status == 421, "Host: \(host) on \(path) answered \(reply.status)")
                #expect(reply.errorCode == "misdirected", "Host: \(host) on \(path)")
            }
            #expect(reply.header("Content-Type") == "application/json")
        }
    }

    @Test func onEveryAddressLocalNamesAreServedAndOthersMisdirected() throws {
        let test = try TestServer { $0.host = "0.0.0.0" }
        for host in ["localhost", "127.0.0.1:\(test.port)", "127.0.0.2", "[::1]"] {
            #expect(try httpRequest(port: test.port, "GET", "/api/v1/hello", headers: ["Host": host]).status == 200, "\(host)")
        }
        for host in ["203.0.113.9", "[2001:db8::1]:8080", "evil.example"] {
            #expect(try httpRequest(port: test.port, "GET", "/api/v1/hello", headers: ["Host": host]).errorCode == "misdirected", "\(host)")
        }
    }

    @Test func http11WithoutHostIs400AndHTTP10WithoutHostIsServed() throws {
        let test = try TestServer()
        let refused = try rawExchange(port: test.port, "GET /api/v1/hello HTTP/1.1\r\n\r\n").reply
        #expect(refused.status == 400)
        #expect(refused.errorCode == "bad_request")
        #expect(try rawExchange(port: test.port, "GET /api/v1/hello HTTP/1.0\r\n\r\n").reply.status == 200)
    }

    @Test(arguments: ["/.env", "/.git/config", "/.git/", "/js/.hidden.js", "/%2eenv", "/.well-known/x", "/dotlink.txt", "/.git"])
    func dotFilesAreNeverServed(path: String) throws {
        let test = try TestServer()
        let reply = try httpRequest(port: test.port, "GET", path)
        #expect(reply.status == 404, "\(path) answered \(reply.status)")
        #expect(!reply.text.contains("dot-secret"), "\(path)")
    }
}
