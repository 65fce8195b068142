import Foundation
import HTTPServer
import HTTPTestSupport
import Testing

/// Issue 11 item 11: libmicrohttpd decodes `%00` and hands over a C string, so the path was cut
/// there and `DELETE …/items/<id>%00/parts/x` reached `DELETE …/items/<id>`. Any target whose
/// decoded form holds a byte no route can hold is refused before routing.
@Suite("Request targets")
struct RequestTargetTests {
    @Test(arguments: [
        "/api/v1/items/abc%00/parts/x", "/api/v1/items/abc%00", "/api/v1/items/%00", "/api/v1/items/a%0Ab",
        "/api/v1/items/a%0d%0aSet-Cookie:%20x", "/api/v1/items/a%1Bb", "/api/v1/items/a%7Fb", "/api/v1/items/a%09b",
        "/api/v1/items/a%2Fb", "/api/v1/items/a%2fparts%2fx", "/api/v1/items/a%5Cb", "/api/v1/items/%ff",
        "/api/v1/items/%c0%af", "/api/v1/items/%e2%82", "/api/v1/items/%2e%2e", "/api/v1/items/%2E",
        "/api/v1/items/../items/x", "/index.html%00.png", "/js/app.js%00", "/%00", "/js/%0a",
    ])
    func pathWithAByteNoRouteHoldsIs400(path: String) throws {
        let test = try TestServer()
        for method in ["GET", "DELETE"] {
            let reply = try httpRequest(port: test.port, method, path)
            #expect(reply.status == 400, "\(method) \(path) answered \(reply.status) \(reply.text)")
            #expect(reply.errorCode == "bad_path", "\(method) \(path): \(reply.text)")
            #expect(reply.header("Content-Type") == "application/json")
        }
    }

    @Test func nulInTheQueryIs400() throws {
        let test = try TestServer()
        let reply = try httpRequest(port: test.port, "GET", "/api/v1/wait?s=1%00junk")
        #expect(reply.status == 400)
        #expect(reply.errorCode == "invalid_query")
    }

    @Test(arguments: [
        "/api/v1/items/a%20b", "/api/v1/items/caf%C3%A9", "/api/v1/items/100%25", "/api/v1/items/a.b", "/api/v1/items/-_~",
    ])
    func ordinaryEncodedBytesStillRoute(path: String) throws {
        let test = try TestServer()
        let reply = try httpRequest(port: test.port, "GET", path)
        #expect(reply.status == 200, "\(path) answered \(reply.status) \(reply.text)")
    }

    @Test func theServerKeepsServingAfterABadTarget() throws {
        let test = try TestServer()
        let connection = try RawHTTPConnection(port: test.port)
        #expect(try connection.request("DELETE", "/api/v1/items/x%00/parts/y").status == 400)
        #expect(try httpRequest(port: test.port, "GET", "/api/v1/items/x").status == 200)
    }
}
