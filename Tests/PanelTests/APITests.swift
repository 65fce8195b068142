import Foundation
import HTTPServer
import HTTPTestSupport
import Testing

@testable import PanelCore
@testable import PanelHTTP

@Suite("Panel API")
struct APITests {
    @Test func openAPIListsEveryRegisteredRoute() throws {
        let panel = try PanelFixture()
        let reply = try panel.get("/api/v1/openapi.json")
        #expect(reply.status == 200)
        let document = try reply.json()
        #expect(document["openapi"] as? String == "3.1.0")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        for route in panel.app.server.routes {
            let operations = paths[route.path]
            #expect(operations?[route.method.rawValue.lowercased()] != nil, "\(route.method) \(route.path) missing from openapi.json")
            if let operation = operations?[route.method.rawValue.lowercased()] as? [String: Any] {
                #expect((operation["summary"] as? String)?.isEmpty == false)
                #expect((operation["security"] as? [Any])?.isEmpty == (route.requiresAuth ? nil : true))
            }
        }
        let documented = paths.reduce(0) { $0 + $1.value.count }
        #expect(documented == panel.app.server.routes.count, "no operation is documented that is not served")
    }

    /// The document carries schemas taken from the Codable types; every answer the tests get is
    /// checked against it (PanelFixture), and the check does catch a wrong answer.
    @Test func openAPIDescribesBodiesAndAnswersAndCatchesMismatches() throws {
        let panel = try PanelFixture()
        let document = try panel.get("/api/v1/openapi.json").json()
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: [String: Any]])
        let create = try #require(paths["/api/v1/guests"]?["post"] as? [String: Any])
        let body = try #require(((create["requestBody"] as? [String: Any])?["content"] as? [String: Any])?["application/json"] as? [String: Any])
        #expect((body["schema"] as? [String: Any])?["$ref"] as? String == "#/components/schemas/CreateGuest")
        #expect(
            Set(schemas["CreateGuest"]?["required"] as? [String] ?? []) == ["name", "image", "machineType", "memoryMiB"],
            "icount is optional: it is read with decodeIfPresent")
        let guestState = ((schemas["GuestRecord"]?["properties"] as? [String: Any])?["state"] as? [String: Any])?["enum"] as? [String]
        #expect(guestState == GuestState.allCases.map(\.rawValue))
        let console = try #require(paths["/api/v1/guests/{id}/console"]?["get"] as? [String: Any])
        #expect((console["parameters"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["id", "since", "wait"])

        let validator = OpenAPIValidator(document: document)
        let health = try panel.get("/api/v1/health", token: nil)
        #expect(validator.problems(method: "GET", path: "/api/v1/health", status: 200, contentType: "application/json", body: health.body).isEmpty)
        #expect(
            !validator.problems(
                method: "GET", path: "/api/v1/health", status: 200, contentType: "application/json",
                body: Array(#"{"status": 1, "release": "1.1"}"#.utf8)
            ).isEmpty, "a wrong field type is caught")
        #expect(
            !validator.problems(
                method: "GET", path: "/api/v1/guests", status: 200, contentType: "application/json",
                body: Array(#"{"items": [{"id": "g-1"}]}"#.utf8)
            ).isEmpty, "a missing required field is caught")
        #expect(
            !validator.problems(
                method: "POST", path: "/api/v1/guests", status: 200, contentType: "application/json",
                body: Array("{}".utf8)
            ).isEmpty, "an undocumented status is caught")
        #expect(
            !validator.problems(
                method: "GET", path: "/api/v1/guests", status: 404, contentType: "application/json",
                body: Array(#"{"message": "x"}"#.utf8)
            ).isEmpty, "errors must have the error shape")
    }

    @Test func unknownAPIRouteIsJSON404EvenWithoutToken() throws {
        let panel = try PanelFixture()
        let reply = try panel.get("/api/v1/does-not-exist")
        #expect(reply.status == 404)
        #expect(reply.errorCode == "not_found")
    }

    /// JSON numbers are doubles: ones no integer can hold are refused, not converted (which
    /// would stop the process with every guest in it).
    @Test func outOfRangeNumbersAreRefusedNotConverted() throws {
        let panel = try PanelFixture()
        let target: [String: Any] = ["url": "http://127.0.0.1:9", "token": "x"]
        for (field, value) in [("downtimeLimitMs", 1e20), ("downtimeLimitMs", 0), ("maxBandwidth", -1), ("maxBandwidth", 1e300)] {
            let reply = try panel.send("POST", "/api/v1/guests/nope/migrate", json: ["target": target, field: value])
            #expect(reply.status == 422, "\(field) \(value): \(reply.text)")
        }
        #expect(try panel.get("/api/v1/health").status == 200, "still serving")
    }

    /// Until recovery from the last run is done, changes wait (503, Retry-After); reads go on.
    @Test func startupGateHoldsChangesUntilOpened() throws {
        let gate = StartupGate()
        let ok: (Request) throws -> Response = { _ in .json(["ok": true]) }
        #expect(throws: HTTPError.self) { try gate.handle(Request(method: .POST, path: "/api/v1/guests"), next: ok) }
        #expect(try gate.handle(Request(method: .GET, path: "/api/v1/guests"), next: ok).status == .ok)
        gate.openUp()
        #expect(try gate.handle(Request(method: .POST, path: "/api/v1/guests"), next: ok).status == .ok)
    }

    @Test func uiShellIsServed() throws {
        let panel = try PanelFixture()
        let index = try panel.get("/", token: nil)
        #expect(index.status == 200)
        #expect(index.text.contains("<script type=\"module\" src=\"/js/app.js\">"))
        let app = try panel.get("/js/app.js", token: nil)
        #expect(app.header("Content-Type") == "text/javascript; charset=utf-8")
        #expect(try panel.get("/../Package.swift", token: nil).status == 400)
    }

    @Test func eventsLongPollAnswersWaitsAndWakes() throws {
        let panel = try PanelFixture()
        let first = try panel.get("/api/v1/events?since=0")
        let items = try #require(try first.json()["items"] as? [[String: Any]])
        #expect(items.first?["type"] as? String == "host.started")
        let next = try #require(try first.json()["next"] as? Int)

        let start = Date()
        let timedOut = try panel.get("/api/v1/events?since=\(next)&wait=1")
        #expect(Date().timeIntervalSince(start) >= 0.9)
        #expect((try timedOut.json()["items"] as? [Any])?.isEmpty == true)

        let connection = try RawHTTPConnection(port: panel.port)
        try connection.send("GET", "/api/v1/events?since=\(next)&wait=30", headers: ["Authorization": "Bearer \(PanelFixture.token)"])
        let deadline = Date().addingTimeInterval(10)
        while panel.app.events.waiting == 0, Date() < deadline { usleep(1000) }
        #expect(panel.app.events.waiting == 1, "the long poll is parked")
        panel.app.events.publish("test.ping", subject: "x", data: ["n": 1])
        let woken = try connection.readReply()
        let woke = try #require(try woken.json()["items"] as? [[String: Any]])
        #expect(woke.map { $0["type"] as? String } == ["test.ping"])

        #expect(try panel.get("/api/v1/events?wait=999").status == 400)
    }

    @Test func eventStreamReplaysFromLastEventIDAndFollows() throws {
        let panel = try PanelFixture()
        panel.app.events.publish("test.one")
        panel.app.events.publish("test.two")
        let connection = try RawHTTPConnection(port: panel.port)
        try connection.send(
            "GET", "/api/v1/events/stream",
            headers: ["Authorization": "Bearer \(PanelFixture.token)", "Last-Event-ID": "2"])
        var dataLines: [String] = []
        var ids: [String] = []
        func readEvent() throws {
            while let line = try connection.readLine() {
                if line.hasPrefix("id: ") { ids.append(String(line.dropFirst(4))) }
                if line.hasPrefix("data: ") { dataLines.append(String(line.dropFirst(6))); return }
            }
        }
        try readEvent()
        #expect(ids == ["3"])
        #expect(dataLines.last?.contains("\"test.two\"") == true)
        panel.app.events.publish("test.three")
        try readEvent()
        #expect(ids == ["3", "4"])
        #expect(dataLines.last?.contains("\"test.three\"") == true)
    }

    /// Numbers restart with every run, so a browser's cursor from the last run may be far ahead:
    /// it gets the whole ring at once, marked truncated, instead of silence.
    @Test func eventsCursorFromAnEarlierRunGetsTheRingTruncated() throws {
        let panel = try PanelFixture()
        panel.app.events.publish("test.one")
        let newest = Int(panel.app.events.nextSeq) - 1
        let start = Date()
        let page = try panel.get("/api/v1/events?since=\(newest + 500)&wait=30").json()
        #expect(Date().timeIntervalSince(start) < 5, "answers at once, no waiting for seq \(newest + 501)")
        #expect(page["truncated"] as? Bool == true)
        #expect(page["next"] as? Int == newest)
        #expect(page["epoch"] as? String == panel.app.events.epoch)
        let items = try #require(page["items"] as? [[String: Any]])
        #expect(items.first?["seq"] as? Int == 1)
        #expect(items.first?["type"] as? String == "host.started")
        #expect(items.last?["type"] as? String == "test.one")
        #expect(items.allSatisfy { $0["epoch"] as? String == panel.app.events.epoch })

        let current = try panel.get("/api/v1/events?since=\(newest)").json()
        #expect(current["truncated"] as? Bool == false)
        #expect((current["items"] as? [Any])?.isEmpty == true)
    }

    @Test func eventStreamReplaysTheRingForALastEventIDFromAnEarlierRun() throws {
        let panel = try PanelFixture()
        let newest = Int(panel.app.events.nextSeq) - 1
        let connection = try RawHTTPConnection(port: panel.port)
        try connection.send(
            "GET", "/api/v1/events/stream",
            headers: ["Authorization": "Bearer \(PanelFixture.token)", "Last-Event-ID": "\(newest + 500)"])
        var ids: [String] = []
        var dataLines: [String] = []
        func readEvent() throws {
            while let line = try connection.readLine() {
                if line.hasPrefix("id: ") { ids.append(String(line.dropFirst(4))) }
                if line.hasPrefix("data: ") { dataLines.append(String(line.dropFirst(6))); return }
            }
        }
        try readEvent()
        #expect(ids == ["1"])
        #expect(dataLines.first?.contains("\"host.started\"") == true)
        #expect(dataLines.first?.contains("\"epoch\":\"\(panel.app.events.epoch)\"") == true)
        for _ in 1..<newest { try readEvent() }
        panel.app.events.publish("test.after")
        try readEvent()
        #expect(ids.last == String(newest + 1))
        #expect(dataLines.last?.contains("\"test.after\"") == true)
    }

    @Test func listenAddressesParse() throws {
        #expect(try PanelConfiguration.parseListen("127.0.0.1:8080") == ("127.0.0.1", 8080))
        #expect(try PanelConfiguration.parseListen("[::1]:9000") == ("::1", 9000))
        #expect(try PanelConfiguration.parseListen("localhost:0") == ("127.0.0.1", 0))
        #expect(throws: ConfigurationError.self) { try PanelConfiguration.parseListen("8080") }
        #expect(throws: ConfigurationError.self) { try PanelConfiguration.parseListen("1.2.3.4:99999") }
    }

    @Test func configurationFileErrorsNameTheKey() throws {
        let path = NSTemporaryDirectory() + "emupanel-config-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try #"{"server": {"threads": "two"}}"#.write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try PanelConfiguration.load(path: path)
            Issue.record("a bad type must be refused")
        } catch let error as ConfigurationError {
            #expect(error.description.contains("threads"))
        }
        try #"{"listen": "127.0.0.1:9999", "peers": [{"name": "b", "url": "http://127.0.0.1:9", "token": "t"}]}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let loaded = try PanelConfiguration.load(path: path)
        #expect(loaded.listen == "127.0.0.1:9999")
        #expect(loaded.settings.peers.first?.name == "b")
        #expect(loaded.server.threads == 2)
        // A peer's token goes into a header: a line break (or a space) in it is a configuration error.
        try #"{"peers": [{"name": "b", "url": "http://127.0.0.1:9", "token": "t\r\nX-Injected: 1"}]}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        do {
            try PanelConfiguration.load(path: path).validate()
            Issue.record("a token with a line break must be refused")
        } catch let error as ConfigurationError {
            #expect(error.description.contains("token"), "\(error)")
        }
    }

    @Test func theShippedConfigurationLoads() throws {
        let path = URL(fileURLWithPath: PanelFixture.publicDir).deletingLastPathComponent().appendingPathComponent("Config/emupanel.json").path
        let configuration = try PanelConfiguration.load(path: path)
        try configuration.validate()
        #expect(configuration.listen.hasPrefix("127.0.0.1:"))
    }
}
