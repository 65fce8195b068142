import Foundation
import HTTPServer
import Synchronization

/// State shared between the test routes and the tests.
final class Hooks: Sendable {
    /// Long polls parked on `/api/v1/wait`, completed by `wakeAll`.
    let waiting = Mutex<[DeferredResponse]>([])
    let streams = Mutex<[EventStream]>([])
    let terminatedStreams = Atomic<Int>(0)
    /// Full credential checks `TestAuth.handle` made.
    let authChecks = Atomic<Int>(0)
    /// Checks `TestAuth.refusalBeforeBody` made from a head.
    let headChecks = Atomic<Int>(0)
    /// `/api/v1/late/*` handlers entered, and whether they may return.
    let lateEntered = Atomic<Int>(0)
    let lateRelease = Atomic<Bool>(false)

    /// Holds a handler on the daemon thread: between the server's `stopping` check and its parking.
    func holdLateHandler() {
        lateEntered.add(1, ordering: .sequentiallyConsistent)
        while !lateRelease.load(ordering: .sequentiallyConsistent) { usleep(1000) }
    }

    func wakeAll(_ text: String) {
        for deferred in waiting.withLock({ list in
            defer { list = [] }; return list
        }) {
            deferred.complete(.text(text))
        }
    }

    func broadcast(_ data: String) {
        for stream in streams.withLock({ $0 }) { stream.send(id: nil, data: data) }
    }
}

/// A real server on an ephemeral port with a small route table and a Public-like directory.
final class TestServer: Sendable {
    let server: HTTPServer
    let root: String
    let hooks = Hooks()

    var port: UInt16 { server.port }

    init(configure: (inout ServerConfiguration) -> Void = { _ in }) throws {
        root = NSTemporaryDirectory() + "emupanel-http-\(UUID().uuidString)"
        try Self.makeFiles(root)
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.threads = 2
        configure(&configuration)
        server = HTTPServer(configuration: configuration, router: Self.router(hooks: hooks, publicDir: root + "/public"))
        try server.start()
    }

    deinit {
        server.stop()
        try? FileManager.default.removeItem(atPath: root)
    }

    struct Greeting: Codable { var name: String; var count: Int }

    static func router(hooks: Hooks, publicDir: String) -> Router {
        let builder = RouterBuilder()
        let api = builder.group("/api/v1")
        api.get("/hello", summary: "hello") { _ in .json(["hello": "world"]) }
        api.post("/echo", summary: "echo") { request in
            Response(status: .ok, headers: HTTPHeaders([("Content-Type", "application/octet-stream")]), body: .bytes(request.body))
        }
        api.post("/greet", summary: "decode") { request in
            let greeting = try request.decode(Greeting.self)
            return .json(["greeting": "hi \(greeting.name) x\(greeting.count)"])
        }
        api.post("/small", summary: "a route with a 4 KiB body limit", maxBodyBytes: 4096) { request in
            .json(["bytes": request.body.count])
        }
        api.get("/items/{id}", summary: "item") { request in .json(["id": try request.parameter("id")]) }
        api.delete("/items/{id}", summary: "delete item") { _ in .empty() }
        api.get("/items/{id}/parts/{part}", summary: "part") { request in
            .json(["id": try request.parameter("id"), "part": try request.parameter("part")])
        }
        api.get("/crash", summary: "throws a non-HTTP error") { _ in throw CocoaError(.fileNoSuchFile) }
        api.get("/wait", summary: "long poll") { request in
            let seconds = try request.queryInt("s", default: 1, range: 0...30)
            let deferred = DeferredResponse(timeout: Double(seconds)) { .text("timeout") }
            hooks.waiting.withLock { $0.append(deferred) }
            return Response(body: .deferred(deferred))
        }
        api.get("/stream", summary: "sse") { _ in
            let stream = EventStream()
            hooks.streams.withLock { $0.append(stream) }
            stream.onTermination {
                hooks.terminatedStreams.add(1, ordering: .sequentiallyConsistent)
                hooks.streams.withLock { $0.removeAll { $0 === stream } }
            }
            stream.send(id: "1", data: "hello")
            return Response(headers: HTTPHeaders([("Content-Type", "text/event-stream")]), body: .stream(stream))
        }
        api.get("/late/wait", summary: "long poll parked only when released") { _ in
            hooks.holdLateHandler()
            return Response(body: .deferred(DeferredResponse(timeout: 30) { .text("timeout") }))
        }
        api.get("/late/stream", summary: "sse started only when released") { _ in
            hooks.holdLateHandler()
            let stream = EventStream()
            stream.send(data: "hello")
            return Response(headers: HTTPHeaders([("Content-Type", "text/event-stream")]), body: .stream(stream))
        }
        let secured = api.group("/private", middleware: [TestAuth(hooks: hooks)])
        secured.post("/echo", summary: "echo behind auth") { request in
            Response(status: .ok, headers: HTTPHeaders([("Content-Type", "application/octet-stream")]), body: .bytes(request.body))
        }
        secured.post("/open", summary: "public echo in the same group", public: true) { request in
            .json(["bytes": request.body.count])
        }
        let files = StaticFiles(root: publicDir)
        builder.setFallback { request in
            guard let response = try files.respond(to: request) else { throw HTTPError.notFound(request.path) }
            return response
        }
        return builder.build()
    }

    static func makeFiles(_ root: String) throws {
        let manager = FileManager.default
        try manager.createDirectory(atPath: root + "/public/js", withIntermediateDirectories: true)
        try "<!doctype html><title>t</title>".write(toFile: root + "/public/index.html", atomically: true, encoding: .utf8)
        try "export const x = 1;".write(toFile: root + "/public/js/app.js", atomically: true, encoding: .utf8)
        try "body{}".write(toFile: root + "/public/style.css", atomically: true, encoding: .utf8)
        try "secret".write(toFile: root + "/secret.txt", atomically: true, encoding: .utf8)
        try manager.createSymbolicLink(atPath: root + "/public/escape.txt", withDestinationPath: root + "/secret.txt")
        // Dot files inside the root: never served, whatever the path that reaches them.
        try manager.createDirectory(atPath: root + "/public/.git", withIntermediateDirectories: true)
        try manager.createDirectory(atPath: root + "/public/.well-known", withIntermediateDirectories: true)
        for file in ["/public/.env", "/public/.git/config", "/public/js/.hidden.js", "/public/.well-known/x"] {
            try "dot-secret".write(toFile: root + file, atomically: true, encoding: .utf8)
        }
        try manager.createSymbolicLink(atPath: root + "/public/dotlink.txt", withDestinationPath: root + "/public/.env")
    }
}

/// Accepts `Authorization: Bearer secret`; like the panel's, makes its whole check from the head
/// of a request with a body, before the body is read.
struct TestAuth: AuthenticatingMiddleware {
    let hooks: Hooks

    func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response {
        hooks.authChecks.add(1, ordering: .sequentiallyConsistent)
        if let refusal = check(request) { throw refusal }
        return try next(request)
    }

    func refusalBeforeBody(_ head: Request) -> HTTPError? {
        hooks.headChecks.add(1, ordering: .sequentiallyConsistent)
        return check(head)
    }

    private func check(_ request: Request) -> HTTPError? {
        guard let authorization = request.headers["Authorization"] else {
            return HTTPError(.unauthorized, code: "unauthorized", message: "no credentials")
        }
        return authorization == "Bearer secret" ? nil : HTTPError(.unauthorized, code: "invalid_token", message: "wrong token")
    }
}
