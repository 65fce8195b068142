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
        let trap = try FakePeer { _ in .json(["go": true]) }
        let redirector = try FakePeer { [port = trap.port] request in
            Response(status: HTTPStatus(307), headers: HTTPHeaders([("Location", "http://127.0.0.1:\(port)\(request.path)")]))
        }
        let panel = try PanelFixture(machines: VirtMachineTypes.registry)
        let created = try panel.send("POST", "/api/v1/guests", json: ["name": "mover", "image": "uboot", "machineType": "virt", "memoryMiB": 64])
        let id = try #require(try created.json()["id"] as? String)
        let target: [String: Any] = ["url": "http://127.0.0.1:\(redirector.port)", "token": "peer-secret-token"]
        let preflight = try panel.send("POST", "/api/v1/guests/\(id)/migrate/preflight", json: ["target": target])
        #expect(preflight.status == 200)
        #expect(try preflight.json()["go"] as? Bool == false)
        #expect(preflight.text.contains("redirect"), "\(preflight.text)")
        #expect(redirector.requests >= 1, "the peer was asked")
        #expect(trap.requests == 0, "the redirect target was never contacted")
    }
}

/// A stand-in for another host: answers every request with `answer`, counting them.
final class FakePeer: Sendable {
    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    let server: HTTPServer
    private let counter: Counter
    var port: UInt16 { server.port }
    var requests: Int { counter.value.load(ordering: .sequentiallyConsistent) }

    init(_ answer: @escaping @Sendable (Request) -> Response) throws {
        var configuration = ServerConfiguration()
        configuration.port = 0
        let builder = RouterBuilder()
        let counter = Counter()
        self.counter = counter
        builder.setFallback { request in
            counter.value.add(1, ordering: .sequentiallyConsistent)
            return answer(request)
        }
        server = HTTPServer(configuration: configuration, router: builder.build(apiPrefix: "/none/"))
        try server.start()
    }

    deinit { server.stop() }
}
