import Foundation
import HTTPServer
import HTTPTestSupport
import PanelCore
import PanelHTTP
import RISCV
import Synchronization
import Testing

/// Issue 11 item 14: calls to peers carry the peer's bearer token, so they never follow a
/// redirect (Foundation would send the token to wherever it points).
@Suite("Peer calls")
struct PeerClientTests {
    /// Item 14: a peer that answers with a redirect does not get its token sent elsewhere.
    @Test func peerRedirectsAreNotFollowed() throws {
        let trap = try RecordingServer()
        let redirector = try RedirectingServer(to: "http://127.0.0.1:\(trap.port)")
        let panel = try PanelFixture(machines: VirtMachineTypes.registry)
        let created = try panel.send("POST", "/api/v1/guests", json: ["name": "mover", "image": "uboot", "machineType": "virt", "memoryMiB": 64])
        let id = try #require(try created.json()["id"] as? String)
        let target: [String: Any] = ["url": "http://127.0.0.1:\(redirector.port)", "token": "peer-secret-token"]
        let preflight = try panel.send("POST", "/api/v1/guests/\(id)/migrate/preflight", json: ["target": target])
        #expect(preflight.status == 200)
        #expect(try preflight.json()["go"] as? Bool == false)
        #expect(preflight.text.contains("redirect"), "\(preflight.text)")
        #expect(redirector.requests.count >= 1, "the peer was asked")
        #expect(trap.requests.count == 0, "the redirect target was never contacted")
    }
}

/// Requests a test server received.
final class RequestCount: Sendable {
    private let value = Atomic<Int>(0)
    func add() { value.add(1, ordering: .sequentiallyConsistent) }
    var count: Int { value.load(ordering: .sequentiallyConsistent) }
}

/// A peer that answers everything with 307 to another address.
final class RedirectingServer: Sendable {
    let server: HTTPServer
    let requests = RequestCount()
    var port: UInt16 { server.port }

    init(to base: String) throws {
        var configuration = ServerConfiguration()
        configuration.port = 0
        let builder = RouterBuilder()
        let requests = requests
        builder.setFallback { request in
            requests.add()
            return Response(status: HTTPStatus(307), headers: HTTPHeaders([("Location", base + request.path)]))
        }
        server = HTTPServer(configuration: configuration, router: builder.build(apiPrefix: "/none/"))
        try server.start()
    }

    deinit { server.stop() }
}

/// Where the redirect points: it must never be asked.
final class RecordingServer: Sendable {
    let server: HTTPServer
    let requests = RequestCount()
    var port: UInt16 { server.port }

    init() throws {
        var configuration = ServerConfiguration()
        configuration.port = 0
        let builder = RouterBuilder()
        let requests = requests
        builder.setFallback { _ in
            requests.add()
            return .json(["go": true])
        }
        server = HTTPServer(configuration: configuration, router: builder.build(apiPrefix: "/none/"))
        try server.start()
    }

    deinit { server.stop() }
}
