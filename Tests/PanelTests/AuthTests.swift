import Foundation
import HTTPTestSupport
import PanelCore
import PanelHTTP
import Testing

@Suite("Authentication and sessions (SPEC §6)")
struct AuthTests {
    @Test func healthNeedsNoToken() throws {
        let panel = try PanelFixture()
        let reply = try panel.get("/api/v1/health", token: nil)
        #expect(reply.status == 200)
        #expect(try reply.json()["status"] as? String == "ok")
    }

    @Test func missingTokenIs401() throws {
        let panel = try PanelFixture()
        let reply = try panel.get("/api/v1/host", token: nil)
        #expect(reply.status == 401)
        #expect(reply.errorCode == "unauthorized")
        #expect(reply.header("WWW-Authenticate") == "Bearer")
    }

    @Test func bodyWithoutCredentialsIsRefusedBeforeItIsRead() throws {
        let panel = try PanelFixture()
        // Only the head is sent: a 401 can only come from the head, so the body was never buffered.
        let reply = try rawExchange(port: panel.port, "POST /api/v1/guests HTTP/1.1\r\nHost: localhost\r\nContent-Length: 500000\r\n\r\n").reply
        #expect(reply.status == 401)
        #expect(reply.errorCode == "unauthorized")
        #expect(reply.header("WWW-Authenticate") == "Bearer")
        // The public login route still reads its body without credentials.
        #expect(try panel.send("POST", "/api/v1/session", json: ["token": PanelFixture.token], token: nil).status == 201)
    }

    @Test func badTokenIs401() throws {
        let panel = try PanelFixture()
        #expect(try panel.get("/api/v1/host", token: "wrong-token-123").status == 401)
        #expect(try panel.get("/api/v1/host", token: nil, headers: ["Authorization": "Basic abc"]).status == 401)
        #expect(try panel.get("/api/v1/host", token: PanelFixture.token + "x").errorCode == "invalid_token")
    }

    @Test func tokenGrantsAccess() throws {
        let panel = try PanelFixture()
        let reply = try panel.get("/api/v1/host")
        #expect(reply.status == 200)
        let json = try reply.json()
        #expect(json["release"] as? String == Release.current)
        #expect(json["counts"] is [String: Any])
    }

    @Test func sessionCookieNeedsCSRFForChanges() throws {
        let panel = try PanelFixture()
        let wrong = try panel.send("POST", "/api/v1/session", json: ["token": "nope-nope-nope"], token: nil)
        #expect(wrong.status == 401)

        let login = try panel.send("POST", "/api/v1/session", json: ["token": PanelFixture.token], token: nil)
        #expect(login.status == 201)
        let setCookie = try #require(login.header("Set-Cookie"))
        #expect(setCookie.contains("HttpOnly"))
        #expect(setCookie.contains("SameSite=Strict"))
        let cookie = String(setCookie.split(separator: ";")[0])
        let csrf = try #require(try login.json()["csrfToken"] as? String)

        // Reads work with the cookie alone.
        let host = try panel.get("/api/v1/host", token: nil, headers: ["Cookie": cookie])
        #expect(host.status == 200)
        let session = try panel.get("/api/v1/session", token: nil, headers: ["Cookie": cookie])
        #expect(try session.json()["csrfToken"] as? String == csrf)

        // Changes need the CSRF token.
        let noCSRF = try panel.send("DELETE", "/api/v1/session", token: nil, headers: ["Cookie": cookie])
        #expect(noCSRF.status == 403)
        #expect(noCSRF.errorCode == "csrf_required")
        let badCSRF = try panel.send("DELETE", "/api/v1/session", token: nil, headers: ["Cookie": cookie, "X-CSRF-Token": "x"])
        #expect(badCSRF.status == 403)
        #expect(badCSRF.errorCode == "csrf_mismatch")
        let logout = try panel.send("DELETE", "/api/v1/session", token: nil, headers: ["Cookie": cookie, "X-CSRF-Token": csrf])
        #expect(logout.status == 204)
        #expect(logout.header("Set-Cookie")?.contains("Max-Age=0") == true)

        // The session is gone.
        #expect(try panel.get("/api/v1/host", token: nil, headers: ["Cookie": cookie]).status == 401)
    }

    @Test func unknownSessionCookieIs401() throws {
        let panel = try PanelFixture()
        let reply = try panel.get("/api/v1/host", token: nil, headers: ["Cookie": "\(panel.app.sessionCookieName)=forged"])
        #expect(reply.status == 401)
    }

    @Test func loginWithBadJSONIs400() throws {
        let panel = try PanelFixture()
        let reply = try httpRequest(port: panel.port, "POST", "/api/v1/session", body: Array("{\"token\":".utf8))
        #expect(reply.status == 400)
        #expect(reply.errorCode == "invalid_json")
    }

    @Test func generatedTokenIsWrittenWithMode0600AndReused() throws {
        let dataDir = NSTemporaryDirectory() + "emupanel-token-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        let first = try AdminToken.resolve(environment: [:], configured: nil, dataDir: dataDir)
        #expect(first.source == .generated)
        #expect(first.value.count >= 32)
        let attributes = try FileManager.default.attributesOfItem(atPath: dataDir + "/admin-token")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let second = try AdminToken.resolve(environment: [:], configured: nil, dataDir: dataDir)
        #expect(second.value == first.value)
        #expect(second.source == .file)
        let fromEnvironment = try AdminToken.resolve(environment: ["EMUPANEL_TOKEN": "env-token-123"], configured: "config-token-1", dataDir: dataDir)
        #expect(fromEnvironment.value == "env-token-123")
        let fromConfig = try AdminToken.resolve(environment: [:], configured: "config-token-1", dataDir: dataDir)
        #expect(fromConfig.source == .configuration)
        #expect(throws: ConfigurationError.self) {
            try AdminToken.resolve(environment: ["EMUPANEL_TOKEN": "short"], configured: nil, dataDir: dataDir)
        }
    }

    @Test func panelPrintsALoginURLWithTheToken() throws {
        let panel = try PanelFixture()
        #expect(panel.app.loginURL == "http://127.0.0.1:\(panel.port)/#token=\(PanelFixture.token)")
    }
}
