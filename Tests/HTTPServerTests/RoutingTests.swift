import Foundation
import HTTPServer
import HTTPTestSupport
import Testing

@Suite("Routing and request handling")
struct RoutingTests {
    @Test func routesWithParametersAndJSON() throws {
        let test = try TestServer()
        let hello = try httpRequest(port: test.port, "GET", "/api/v1/hello")
        #expect(hello.status == 200)
        #expect(hello.header("Content-Type") == "application/json")
        #expect(try hello.json()["hello"] as? String == "world")
        let part = try httpRequest(port: test.port, "GET", "/api/v1/items/42/parts/cpu")
        #expect(try part.json()["id"] as? String == "42")
        #expect(try part.json()["part"] as? String == "cpu")
    }

    @Test func unknownRouteIsJSON404() throws {
        let test = try TestServer()
        let reply = try httpRequest(port: test.port, "GET", "/api/v1/nope")
        #expect(reply.status == 404)
        #expect(reply.errorCode == "not_found")
    }

    @Test func wrongMethodIs405WithAllow() throws {
        let test = try TestServer()
        let reply = try httpRequest(port: test.port, "PUT", "/api/v1/items/1")
        #expect(reply.status == 405)
        #expect(reply.errorCode == "method_not_allowed")
        #expect(reply.header("Allow") == "DELETE, GET, HEAD")
    }

    @Test func unimplementedMethodIs501() throws {
        let test = try TestServer()
        for method in ["TRACE", "FOO"] {
            let reply = try httpRequest(port: test.port, method, "/api/v1/items/1")
            #expect(reply.status == 501, "\(method)")
            #expect(reply.errorCode == "not_implemented", "\(method)")
            #expect(reply.header("Allow") == nil, "\(method)")
        }
        // A method the server knows but the route lacks is still 405 with Allow.
        #expect(try httpRequest(port: test.port, "PATCH", "/api/v1/items/1").header("Allow") == "DELETE, GET, HEAD")
    }

    @Test func headUsesTheGetRoute() throws {
        let test = try TestServer()
        let reply = try httpRequest(port: test.port, "HEAD", "/api/v1/hello")
        #expect(reply.status == 200)
    }

    @Test func nonHTTPErrorIs500WithTheErrorShape() throws {
        let test = try TestServer()
        let reply = try httpRequest(port: test.port, "GET", "/api/v1/crash")
        #expect(reply.status == 500)
        #expect(reply.errorCode == "internal_error")
    }

    @Test func keepAliveServesManyRequestsOnOneConnection() throws {
        let test = try TestServer()
        let connection = try RawHTTPConnection(port: test.port)
        for index in 0..<20 {
            let reply = try connection.request("GET", "/api/v1/items/\(index)")
            #expect(reply.status == 200)
            #expect(reply.header("Connection")?.lowercased() != "close")
        }
    }

    @Test func bodyIsAssembledAndEchoed() throws {
        let test = try TestServer()
        let body = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 % 251 + 1) }
        let reply = try httpRequest(port: test.port, "POST", "/api/v1/echo", body: body)
        #expect(reply.status == 200)
        #expect(reply.body == body)
    }

    @Test func invalidJSONIs400() throws {
        let test = try TestServer()
        let bad = try httpRequest(port: test.port, "POST", "/api/v1/greet", body: Array("{not json".utf8))
        #expect(bad.status == 400)
        #expect(bad.errorCode == "invalid_json")
        let wrongType = try httpRequest(port: test.port, "POST", "/api/v1/greet", body: Array(#"{"name":"a","count":"x"}"#.utf8))
        #expect(wrongType.status == 400)
        #expect(try wrongType.json().description.contains("count"))
        let missing = try httpRequest(port: test.port, "POST", "/api/v1/greet", body: Array(#"{"name":"a"}"#.utf8))
        #expect(missing.status == 400)
        let good = try httpRequest(port: test.port, "POST", "/api/v1/greet", body: Array(#"{"name":"a","count":2}"#.utf8))
        #expect(try good.json()["greeting"] as? String == "hi a x2")
    }

    @Test func oversizedBodyIs413AndTheServerKeepsServing() throws {
        let test = try TestServer { $0.maxBodyBytes = 4096 }
        // Announced too large: refused from the headers, before the body is sent (as curl sees it).
        let declared = try rawExchange(port: test.port, "POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n").reply
        #expect(declared.status == 413)
        #expect(declared.errorCode == "payload_too_large")

        let chunked = try RawHTTPConnection(port: test.port)
        var raw = Array("POST /api/v1/echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        for _ in 0..<3 { raw += Array("800\r\n".utf8) + [UInt8](repeating: 65, count: 0x800) + Array("\r\n".utf8) }
        // Chunked: the size is only known while reading; the rest is drained, then refused.
        try chunked.send(raw: raw + Array("0\r\n\r\n".utf8))
        #expect(try chunked.readReply().status == 413)

        let after = try httpRequest(port: test.port, "GET", "/api/v1/hello")
        #expect(after.status == 200)
    }

    @Test func bodyWithoutCredentialsIsRefusedBeforeItIsRead() throws {
        let test = try TestServer()
        // Only the head is sent: the 401 can only come from the head, the body is never read.
        let refused = try rawExchange(port: test.port, "POST /api/v1/private/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 900000\r\n\r\n")
            .reply
        #expect(refused.status == 401)
        #expect(refused.errorCode == "unauthorized")
        #expect(
            try rawExchange(port: test.port, "POST /api/v1/private/echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n").reply
                .status == 401)
        #expect(test.hooks.authChecks.load(ordering: .sequentiallyConsistent) == 0, "the middleware's full check never ran")

        // Wrong credentials are refused from the head too: only the head is sent.
        #expect(
            try rawExchange(
                port: test.port,
                "POST /api/v1/private/echo HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer nope\r\nContent-Length: 900000\r\n\r\n"
            ).reply.errorCode == "invalid_token")
        #expect(test.hooks.authChecks.load(ordering: .sequentiallyConsistent) == 0)

        // With the right credentials the body is read and the middleware checks again.
        let body = [UInt8](repeating: 7, count: 100_000)
        let allowed = try httpRequest(port: test.port, "POST", "/api/v1/private/echo", headers: ["Authorization": "Bearer secret"], body: body)
        #expect(allowed.status == 200)
        #expect(allowed.body == body)
        #expect(test.hooks.authChecks.load(ordering: .sequentiallyConsistent) == 1)

        // A public route in the same group still reads bodies without credentials.
        let open = try httpRequest(port: test.port, "POST", "/api/v1/private/open", body: body)
        #expect(open.status == 200)
        #expect(try open.json()["bytes"] as? Int == body.count)
        #expect(try httpRequest(port: test.port, "GET", "/api/v1/hello").status == 200)
    }

    @Test func malformedRequestsGetAnErrorAndTheServerKeepsServing() throws {
        let test = try TestServer { $0.connectionMemoryBytes = 16 << 10 }
        let garbage = try RawHTTPConnection(port: test.port)
        try garbage.send(raw: Array("THIS IS NOT HTTP\r\n\r\n".utf8))
        let garbageReply = try? garbage.readReply()
        #expect(garbageReply.map { $0.status >= 400 } ?? true)

        let huge = try RawHTTPConnection(port: test.port)
        let header = "X-Big: " + String(repeating: "a", count: 40_000) + "\r\n"
        try? huge.send(raw: Array("GET /api/v1/hello HTTP/1.1\r\nHost: localhost\r\n\(header)\r\n".utf8))
        let hugeReply = try? huge.readReply()
        #expect(hugeReply.map { $0.status == 431 || $0.status == 413 || $0.status == 400 } ?? true)

        let unknownMethod = try httpRequest(port: test.port, "BREW", "/api/v1/hello")
        #expect(unknownMethod.status == 501)

        let badQuery = try httpRequest(port: test.port, "GET", "/api/v1/wait?s=abc")
        #expect(badQuery.status == 400)
        #expect(badQuery.errorCode == "invalid_query")

        #expect(try httpRequest(port: test.port, "GET", "/api/v1/hello").status == 200)
    }

    @Test func configurationIsValidated() throws {
        var configuration = ServerConfiguration()
        configuration.threads = 0
        #expect(throws: ServerError.self) { try configuration.validate() }
        configuration = ServerConfiguration()
        configuration.host = "not-an-address"
        configuration.port = 0
        let server = HTTPServer(configuration: configuration, router: RouterBuilder().build())
        #expect(throws: ServerError.self) { try server.start() }
    }

    /// The trie is walked over UTF-8 bytes: literals win over parameters, empty segments are
    /// skipped, a prefix of a route is no route, and matching is bytewise (no Unicode folding).
    @Test func routerMatchesSegmentsBytewise() throws {
        let builder = RouterBuilder()
        let api = builder.group("/api/v1")
        api.get("/items/{id}", summary: "item") { .text("item \(try $0.parameter("id"))") }
        api.get("/items/new", summary: "new") { _ in .text("new") }
        api.get("/caf\u{E9}", summary: "accent") { _ in .text("accent") }
        let router = builder.build()
        func body(_ path: String, _ method: HTTPMethod = .GET) -> String {
            guard case .bytes(let bytes) = router.respond(to: Request(method: method, path: path)).body else { return "" }
            return String(decoding: bytes, as: UTF8.self)
        }
        #expect(body("/api/v1/items/new") == "new")
        #expect(body("/api/v1/items/n\u{E9}w") == "item n\u{E9}w")
        #expect(body("//api/v1//items/7/") == "item 7")
        #expect(body("/api/v1/caf\u{E9}") == "accent")
        #expect(router.respond(to: Request(method: .GET, path: "/api/v1/cafe\u{301}")).status == .notFound)
        #expect(router.respond(to: Request(method: .GET, path: "/api/v1/items")).status == .notFound)
        #expect(router.respond(to: Request(method: .POST, path: "/api/v1/items/new")).status == .methodNotAllowed)
    }

    @Test func headerNamesCompareCaseInsensitively() {
        var headers = HTTPHeaders([("Content-Type", "text/plain"), ("X-CSRF-Token", "abc")])
        #expect(headers["content-type"] == "text/plain")
        #expect(headers["X-Csrf-Token"] == "abc")
        #expect(headers["Content-Typ"] == nil)
        #expect(headers["Content-Type-X"] == nil)
        #expect(headers["Content_Type"] == nil)
        headers.set("CONTENT-TYPE", "application/json")
        #expect(headers["content-type"] == "application/json")
        #expect(Array(headers).count == 2)
    }
}
