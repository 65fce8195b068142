import Foundation
import HTTPServer
import HTTPTestSupport
import Testing

@Suite("Static files")
struct StaticFileTests {
    @Test func servesIndexAndMimeTypes() throws {
        let test = try TestServer()
        let index = try httpRequest(port: test.port, "GET", "/")
        #expect(index.status == 200)
        #expect(index.header("Content-Type") == "text/html; charset=utf-8")
        #expect(index.text.contains("<title>t</title>"))
        #expect(index.header("Cache-Control") == "no-cache")
        let script = try httpRequest(port: test.port, "GET", "/js/app.js")
        #expect(script.header("Content-Type") == "text/javascript; charset=utf-8")
        #expect(script.text == "export const x = 1;")
        let css = try httpRequest(port: test.port, "GET", "/style.css")
        #expect(css.header("Content-Type") == "text/css; charset=utf-8")
    }

    @Test func etagAnswers304() throws {
        let test = try TestServer()
        let first = try httpRequest(port: test.port, "GET", "/style.css")
        let etag = try #require(first.header("ETag"))
        let second = try httpRequest(port: test.port, "GET", "/style.css", headers: ["If-None-Match": etag])
        #expect(second.status == 304)
        #expect(second.body.isEmpty)
        let other = try httpRequest(port: test.port, "GET", "/style.css", headers: ["If-None-Match": "\"other\""])
        #expect(other.status == 200)
    }

    @Test(arguments: [
        "/../secret.txt", "/js/../../secret.txt", "/..%2fsecret.txt", "/%2e%2e/secret.txt", "/%2e%2e%2fsecret.txt",
        "/js/%2e%2e/%2e%2e/secret.txt", "/.%2e/secret.txt", "/..\\secret.txt", "/escape.txt", "/js/..%5c..%5csecret.txt",
    ])
    func traversalIsRefused(path: String) throws {
        let test = try TestServer()
        let reply = try httpRequest(port: test.port, "GET", path)
        #expect(reply.status == 400 || reply.status == 404, "\(path) answered \(reply.status)")
        #expect(!reply.text.contains("secret"))
    }

    @Test func missingFileIs404AndPostIs405() throws {
        let test = try TestServer()
        #expect(try httpRequest(port: test.port, "GET", "/nope.js").status == 404)
        let post = try httpRequest(port: test.port, "POST", "/index.html", body: [])
        #expect(post.status == 405)
        #expect(post.header("Allow") == "GET, HEAD")
    }
}
