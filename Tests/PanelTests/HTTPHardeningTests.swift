import Foundation
import HTTPServer
import HTTPTestSupport
import Logging
import PanelCore
import PanelHTTP
import RISCV
import Synchronization
import Testing

/// Issue 11's HTTP items through the whole panel: what an attacker on the network or in another
/// browser tab can make it do.
@Suite("HTTP hardening of the panel", .serialized)
struct HTTPHardeningTests {
    /// Item 11: the NUL cut the path at `<id>`, and the snapshot delete deleted the guest.
    @Test func aNULInAGuestPathNeverReachesAShorterRoute() throws {
        let panel = try PanelFixture(machines: VirtMachineTypes.registry)
        let created = try panel.send("POST", "/api/v1/guests", json: ["name": "keep", "image": "uboot", "machineType": "virt", "memoryMiB": 64])
        let id = try #require(try created.json()["id"] as? String)
        for path in [
            "/api/v1/guests/\(id)%00/snapshots/x", "/api/v1/guests/\(id)%00", "/api/v1/guests/\(id)%0a/snapshots/x",
            "/api/v1/guests/\(id)%2fsnapshots%2fx",
        ] {
            let reply = try panel.send("DELETE", path)
            #expect(reply.status == 400, "DELETE \(path) answered \(reply.status)")
            #expect(reply.errorCode == "bad_path")
        }
        #expect(try panel.get("/api/v1/guests/\(id)").status == 200, "the guest is still there")
    }

    /// Item 13: a wrong token or an unknown session cookie is refused from the head; the body is
    /// never buffered. Only the head is sent, so an answer can only come from it.
    @Test func wrongCredentialsAreRefusedBeforeTheBody() throws {
        let panel = try PanelFixture()
        let cookie = "\(panel.app.sessionCookieName)=0123456789abcdef"
        for (header, code) in [
            ("Authorization: Bearer wrong-token-here", "invalid_token"), ("Authorization: Basic abc", "invalid_token"),
            ("Cookie: \(cookie)", "unauthorized"),
        ] {
            let reply = try rawExchange(
                port: panel.port, "POST /api/v1/guests HTTP/1.1\r\nHost: localhost\r\n\(header)\r\nContent-Length: 900000\r\n\r\n"
            ).reply
            #expect(reply.status == 401, "\(header)")
            #expect(reply.errorCode == code, "\(header)")
        }
    }

    @Test func aSessionWithoutItsCSRFTokenIsRefusedBeforeTheBody() throws {
        let panel = try PanelFixture()
        let login = try panel.send("POST", "/api/v1/session", json: ["token": PanelFixture.token], token: nil)
        let cookie = try #require(login.header("Set-Cookie")?.split(separator: ";").first.map(String.init))
        let reply = try rawExchange(
            port: panel.port, "POST /api/v1/guests HTTP/1.1\r\nHost: localhost\r\nCookie: \(cookie)\r\nContent-Length: 900000\r\n\r\n"
        ).reply
        #expect(reply.status == 403)
        #expect(reply.errorCode == "csrf_required")
    }

    @Test func loginBodiesAreCappedAt4KiB() throws {
        let panel = try PanelFixture()
        let reply = try rawExchange(port: panel.port, "POST /api/v1/session HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n").reply
        #expect(reply.status == 413)
        #expect(reply.errorCode == "payload_too_large")
        let padded = "{\"token\": \"\(PanelFixture.token)\"" + String(repeating: " ", count: 3000) + "}"
        let fits = try httpRequest(port: panel.port, "POST", "/api/v1/session", body: Array(padded.utf8))
        #expect(fits.status == 201)
    }

    /// Item 16: after a burst of failures, an address is refused with 429 and Retry-After, whatever
    /// it sends; other addresses are not; every failure is logged.
    @Test func failedAuthenticationIsRateLimitedPerAddressAndLogged() throws {
        let log = CapturedLog()
        let panel = try PanelFixture(logger: log.logger)
        let burst = PanelConfiguration().authRateLimit.burst
        for attempt in 0..<burst {
            let reply = try panel.get("/api/v1/host", token: "wrong-token-\(attempt)")
            #expect(reply.status == 401, "attempt \(attempt)")
        }
        let limited = try panel.get("/api/v1/host", token: "wrong-token-x")
        #expect(limited.status == 429)
        #expect(limited.errorCode == "rate_limited")
        let retryAfter = try #require(limited.header("Retry-After").flatMap(Int.init))
        #expect(retryAfter >= 1)
        // Refused before the token is looked at: the right one would be an oracle otherwise.
        #expect(try panel.get("/api/v1/host").status == 429)
        let login = try httpRequest(port: panel.port, "POST", "/api/v1/session", body: jsonBody(["token": PanelFixture.token]))
        #expect(login.status == 429)
        // Another client is unaffected, and probes need no credentials.
        #expect(
            try httpRequest(
                port: panel.port, "GET", "/api/v1/host", headers: ["Authorization": "Bearer \(PanelFixture.token)"],
                source: "127.0.0.2"
            ).status == 200)
        #expect(try panel.get("/api/v1/health", token: nil).status == 200)
        // Wrong logins count the same.
        for _ in 0..<burst {
            #expect(
                try httpRequest(
                    port: panel.port, "POST", "/api/v1/session", body: jsonBody(["token": "nope-nope-nope"]),
                    source: "127.0.0.3"
                ).status == 401)
        }
        #expect(
            try httpRequest(
                port: panel.port, "POST", "/api/v1/session", body: jsonBody(["token": "nope-nope-nope"]),
                source: "127.0.0.3"
            ).errorCode == "rate_limited")
        let failures = log.messages.filter { $0.contains("authentication failed") }
        #expect(failures.count == 2 * burst, "\(failures.count) failures logged")
        #expect(failures.contains { $0.contains("127.0.0.1") })
        #expect(failures.contains { $0.contains("127.0.0.3") })
        #expect(!log.messages.contains { $0.contains("wrong-token") }, "the guessed token is not written to the log")
    }

    /// Item 18 through the panel: the real Public/ directory, its real pages.
    @Test func panelAnswersCarrySecurityHeaders() throws {
        let panel = try PanelFixture()
        let index = try panel.get("/", token: nil)
        #expect(index.status == 200)
        let csp = try #require(index.header("Content-Security-Policy"))
        #expect(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"))
        #expect(index.header("X-Frame-Options") == "DENY")
        // The page runs no inline script and no inline handler, so the policy costs it nothing.
        #expect(index.text.range(of: #"<script(?![^>]*\bsrc=)"#, options: .regularExpression) == nil)
        #expect(index.text.range(of: #"\son[a-z]+\s*="#, options: .regularExpression) == nil)
        for path in ["/api/v1/host", "/api/v1/session", "/api/v1/guests"] {
            let reply = try panel.get(path)
            #expect(reply.header("Cache-Control") == "no-store", "\(path)")
            #expect(reply.header("X-Content-Type-Options") == "nosniff", "\(path)")
        }
        #expect(try panel.get("/api/v1/health", token: nil).header("Cache-Control") == "no-store")
        let rebound = try panel.get("/api/v1/host", headers: ["Host": "attacker.example:\(panel.port)"])
        #expect(rebound.status == 421)
        #expect(rebound.errorCode == "misdirected")
    }

    @Test func configuredHostNamesAreServed() throws {
        let panel = try PanelFixture { $0.server.hostNames = ["emupanel.example"] }
        #expect(try panel.get("/api/v1/host", headers: ["Host": "emupanel.example:\(panel.port)"]).status == 200)
        #expect(try panel.get("/api/v1/host", headers: ["Host": "other.example:\(panel.port)"]).status == 421)
    }

    /// Issue 15 item 5: two panels on one machine share the browser's cookie jar (cookies ignore
    /// ports); each must keep its own session.
    @Test func twoPanelsOnOneMachineKeepTheirOwnSessions() throws {
        let a = try PanelFixture()
        let b = try PanelFixture()
        var jar: [String: String] = [:]
        func login(_ panel: PanelFixture) throws -> String {
            let reply = try panel.send("POST", "/api/v1/session", json: ["token": PanelFixture.token], token: nil)
            let pair = try #require(reply.header("Set-Cookie")?.split(separator: ";").first)
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            jar[parts[0]] = parts[1]
            return try #require(try reply.json()["csrfToken"] as? String)
        }
        func cookieHeader() -> String { jar.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }
        let csrfA = try login(a)
        _ = try login(b)
        #expect(jar.count == 2, "each panel names its own cookie: \(jar.keys.sorted())")
        #expect(try a.get("/api/v1/host", token: nil, headers: ["Cookie": cookieHeader()]).status == 200)
        #expect(try b.get("/api/v1/host", token: nil, headers: ["Cookie": cookieHeader()]).status == 200)
        let logout = try a.send("DELETE", "/api/v1/session", token: nil, headers: ["Cookie": cookieHeader(), "X-CSRF-Token": csrfA])
        #expect(logout.status == 204)
        if let cleared = logout.header("Set-Cookie")?.split(separator: ";").first?.split(separator: "=").first { jar[String(cleared)] = nil }
        #expect(try a.get("/api/v1/host", token: nil, headers: ["Cookie": cookieHeader()]).status == 401)
        #expect(try b.get("/api/v1/host", token: nil, headers: ["Cookie": cookieHeader()]).status == 200, "logging out of A kept B")
    }

    /// Issue 15 item 9: sessions outlive a restart, and the database keeps only their hashes.
    @Test func sessionsSurviveARestartAndAreStoredHashed() throws {
        let dataDir = NSTemporaryDirectory() + "emupanel-sessions-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        var port: UInt16 = 0
        var cookie = ""
        var csrf = ""
        do {
            let first = try PanelFixture { $0.settings.dataDir = dataDir }
            port = first.port
            let login = try first.send("POST", "/api/v1/session", json: ["token": PanelFixture.token], token: nil)
            cookie = try #require(login.header("Set-Cookie")?.split(separator: ";").first.map(String.init))
            csrf = try #require(try login.json()["csrfToken"] as? String)
            first.app.stop()
        }
        let id = String(cookie.split(separator: "=")[1])
        for file in ["emupanel.sqlite", "emupanel.sqlite-wal"] {
            guard let bytes = FileManager.default.contents(atPath: dataDir + "/" + file) else { continue }
            #expect(bytes.range(of: Data(id.utf8)) == nil, "\(file) holds the session id in clear")
        }
        let second = try PanelFixture {
            $0.settings.dataDir = dataDir
            $0.listen = "127.0.0.1:\(port)"
        }
        let session = try second.get("/api/v1/session", token: nil, headers: ["Cookie": cookie])
        #expect(session.status == 200, "the session outlived the restart")
        #expect(try session.json()["csrfToken"] as? String == csrf)
        let logout = try second.send("DELETE", "/api/v1/session", token: nil, headers: ["Cookie": cookie, "X-CSRF-Token": csrf])
        #expect(logout.status == 204)
        #expect(try second.get("/api/v1/session", token: nil, headers: ["Cookie": cookie]).status == 401)
    }
}

/// Log lines kept in memory, for tests that check what was logged.
final class CapturedLog: Sendable {
    private let lines = Mutex<[String]>([])
    var messages: [String] { lines.withLock { $0 } }

    var logger: Logger {
        var logger = Logger(label: "test") { _ in Handler(log: self) }
        logger.logLevel = .info
        return logger
    }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            let text = "\(event.message) " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            log.lines.withLock { $0.append(text) }
        }
    }
}
