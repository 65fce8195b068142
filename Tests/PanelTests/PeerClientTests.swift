import Foundation
import HTTPServer
import HTTPTestSupport
import Migration
import PanelHTTP
import RISCV
import Synchronization
import Testing

@testable import PanelCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Issue 11 item 14: calls to peers carry the peer's bearer token, so they never follow a
/// redirect (Foundation would send the token to wherever it points).
@Suite("Peer calls")
struct PeerClientTests {
    /// A stopped guest on a fresh panel, and that panel's pre-flight of it to `target`.
    private func preflightOfANewGuest(to target: [String: Any]) throws -> RawHTTPConnection.Reply {
        let panel = try PanelFixture(machines: VirtMachineTypes.registry)
        let created = try panel.send("POST", "/api/v1/guests", json: ["name": "mover", "image": "uboot", "machineType": "virt", "memoryMiB": 64])
        let id = try #require(try created.json()["id"] as? String)
        return try panel.send("POST", "/api/v1/guests/\(id)/migrate/preflight", json: ["target": target])
    }

    /// Item 14: a peer that answers with a redirect does not get its token sent elsewhere.
    @Test func peerRedirectsAreNotFollowed() throws {
        let trap = try FakePeer { _ in .json(["go": true]) }
        let redirector = try FakePeer { [port = trap.port] request in
            Response(status: HTTPStatus(307), headers: HTTPHeaders([("Location", "http://127.0.0.1:\(port)\(request.path)")]))
        }
        let preflight = try preflightOfANewGuest(to: ["url": "http://127.0.0.1:\(redirector.port)", "token": "peer-secret-token"])
        #expect(preflight.status == 200)
        #expect(try preflight.json()["go"] as? Bool == false)
        #expect(preflight.text.contains("redirect"), "\(preflight.text)")
        #expect(redirector.requests >= 1, "the peer was asked")
        #expect(trap.requests == 0, "the redirect target was never contacted")
    }

    /// A token goes into a header: one with a line break would add headers of the caller's choosing.
    @Test func aTokenWithALineBreakIsRefused() throws {
        let peer = try FakePeer { _ in .json(["go": true]) }
        let refused = try preflightOfANewGuest(to: ["url": "http://127.0.0.1:\(peer.port)", "token": "secret\r\nX-Injected: 1"])
        #expect(refused.status == 422 || refused.status == 400, "\(refused.text)")
        #expect(refused.text.contains("invalid_target"), "\(refused.text)")
        #expect(peer.requests == 0)
    }
}

/// The plain HTTP/1.1 client for `http://` peers, against a peer whose bytes are written by hand:
/// every framing an HTTP/1.1 answer may have, and every way a peer may fail to give one.
@Suite("Peer calls over plain HTTP")
struct PeerHTTPTests {
    private func request(_ port: UInt16, _ path: String = "/api/v1/host", body: String? = nil) -> URLRequest {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = body == nil ? "GET" : "POST"
        request.setValue("Bearer t0ken", forHTTPHeaderField: "Authorization")
        request.httpBody = body.map { Data($0.utf8) }
        return request
    }

    @Test func theRequestCarriesItsTargetHostCredentialsAndBody() throws {
        let peer = try RawPeer("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")
        let reply = try #require(PeerHTTP.send(request(peer.port, "/api/v1/migrations/incoming?x=1", body: #"{"a":1}"#), timeout: 5))
        #expect(reply.status == 201 && reply.data == Data("{}".utf8) && reply.error == nil)
        let seen = peer.received()
        #expect(seen.hasPrefix("POST /api/v1/migrations/incoming?x=1 HTTP/1.1\r\n"), "\(seen)")
        #expect(seen.contains("Host: 127.0.0.1:\(peer.port)\r\n") && seen.contains("Authorization: Bearer t0ken\r\n"))
        #expect(seen.contains("Content-Length: 7\r\n") && seen.hasSuffix("\r\n\r\n" + #"{"a":1}"#))
    }

    @Test func chunksAreJoinedAndAContinueIsSkipped() throws {
        let peer = try RawPeer(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5\r\nhello\r\n6;note=x\r\n world\r\n0\r\nTrailer: y\r\n\r\n")
        let reply = try #require(PeerHTTP.send(request(peer.port), timeout: 5))
        #expect(reply.status == 200 && String(decoding: reply.data, as: UTF8.self) == "hello world")
    }

    /// A peer that writes its answer a line at a time (the reads end where its lines do), as a
    /// proxy may: every framing, from the status line to the last chunk.
    @Test func anAnswerThatComesALineAtATimeIsReadWhole() throws {
        let pieces = [
            "HTTP/1.1 100 Continue\r\n", "\r\n", "HTTP/1.1 201 Created\r\n", "Transfer-Encoding: chunked\r\n", "\r\n",
            "3\r\n", "abc\r\n", "2\r\n", "de\r\n", "0\r\n", "\r\n",
        ]
        let peer = try RawPeer(pieces: pieces)
        let reply = try #require(PeerHTTP.send(request(peer.port), timeout: 5))
        #expect(reply.status == 201 && String(decoding: reply.data, as: UTF8.self) == "abcde", "\(reply)")
        // And a byte at a time: no read may assume where the last one ended.
        let sized = try RawPeer(pieces: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".map { String($0) })
        let answer = try #require(PeerHTTP.send(request(sized.port), timeout: 5))
        #expect(answer.status == 200 && answer.data == Data("{}".utf8), "\(answer)")
    }

    @Test func anAnswerWithoutALengthEndsWithItsConnection() throws {
        let peer = try RawPeer("HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it")
        let reply = try #require(PeerHTTP.send(request(peer.port), timeout: 5))
        #expect(reply.status == 200 && String(decoding: reply.data, as: UTF8.self) == "all of it")
    }

    @Test func aRedirectIsAnsweredNotFollowed() throws {
        let peer = try RawPeer("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://elsewhere/x\r\nContent-Length: 0\r\n\r\n")
        let reply = try #require(PeerHTTP.send(request(peer.port), timeout: 5))
        #expect(reply.status == 307 && reply.location == "http://elsewhere/x")
    }

    @Test func aPeerThatStopsMidAnswerIsAnError() throws {
        for broken in ["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "HTTP/1.1 200 OK\r\nContent-Le", "SSH-2.0-OpenSSH\r\n\r\n"] {
            let peer = try RawPeer(broken)
            let reply = try #require(PeerHTTP.send(request(peer.port), timeout: 5))
            #expect(reply.status == nil && reply.error != nil, "\(broken): \(reply)")
        }
    }

    @Test func aSilentPeerIsGivenUpOnAtTheDeadline() throws {
        let peer = try RawPeer(nil)
        let started = ContinuousClock.now
        #expect(PeerHTTP.send(request(peer.port), timeout: 0.3) == nil)
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test func aClosedPortIsAnError() throws {
        let port = try { () throws -> UInt16 in try TCPListener(host: "127.0.0.1").port }()
        let reply = try #require(PeerHTTP.send(request(port), timeout: 5))
        #expect(reply.status == nil && reply.error != nil)
    }
}

/// One connection's worth of a hand-written peer: reads the request (head and announced body),
/// writes `answer` and closes; with no answer it holds the connection open, silent.
final class RawPeer: Sendable {
    private let listener: TCPListener
    private let request = Mutex("")
    private let done = DispatchSemaphore(value: 0)
    var port: UInt16 { listener.port }

    convenience init(_ answer: String?) throws {
        try self.init(pieces: answer.map { [$0] })
    }

    /// `pieces` are written one by one, a moment apart, so each arrives on its own.
    init(pieces answer: [String]?) throws {
        listener = try TCPListener(host: "127.0.0.1")
        let thread = Thread { [self] in
            defer { done.signal() }
            guard let connection = try? listener.accept(timeout: 10) else { return }
            var seen: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while !Self.isWhole(seen) {
                guard let count = try? chunk.withUnsafeMutableBytes({ try connection.read(into: $0) }), count > 0 else { break }
                seen += chunk[..<count]
            }
            request.withLock { $0 = String(decoding: seen, as: UTF8.self) }
            guard let answer else {
                Thread.sleep(forTimeInterval: 2)
                return
            }
            for piece in answer {
                try? Array(piece.utf8).withUnsafeBytes { try connection.write($0) }
                if answer.count > 1 { Thread.sleep(forTimeInterval: 0.005) }
            }
            connection.shutdown()
        }
        thread.start()
    }

    /// The request as it came, once the peer has answered.
    func received() -> String {
        done.wait()
        return request.withLock { $0 }
    }

    private static func isWhole(_ bytes: [UInt8]) -> Bool {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let end = text.range(of: "\r\n\r\n") else { return false }
        let length =
            text[..<end.lowerBound].split(separator: "\r\n")
            .first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
        return text.utf8.count - text[..<end.upperBound].utf8.count >= length
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
