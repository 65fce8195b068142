import EmulatorCore
import Foundation
import HTTPTestSupport
import PanelCore
import PanelHTTP
import Testing
import VMState

@Suite("Machine types API")
struct MachineTypesAPITests {
    /// A panel with the test board and an empty fixtures directory (no frozen release).
    func panel(fixturesDir: String? = nil) throws -> PanelFixture {
        try PanelFixture(machines: TestBoard.registry) { configuration in
            configuration.settings.fixturesDir = fixturesDir ?? configuration.settings.dataDir + "/no-frozen-releases"
        }
    }

    @Test func listShowsEveryTypeWithItsComputedTier() throws {
        let panel = try panel()
        let items = try #require(try panel.get("/api/v1/machine-types").json()["items"] as? [[String: Any]])
        #expect(items.map { $0["name"] as? String } == ["virt-1.1", "virt-1.0", "sandbox", "passthrough"])
        #expect(items.map { $0["tier"] as? String } == ["versioned", "versioned", "unversioned", "none"])
        #expect(items[0]["alias"] as? String == "virt")
        #expect(items[1]["alias"] == nil)
        #expect(items.map { $0["deprecated"] as? Bool } == [false, true, false, false])
        #expect(items[0]["defaultRAMBytes"] as? Int == 16 << 10)
        #expect((items[3]["tierReason"] as? String)?.contains("holds an open host tty") == true)
        let host = try panel.get("/api/v1/host").json()
        #expect((host["counts"] as? [String: Any])?["machineTypes"] as? Int == 4)
    }

    @Test func aliasResolvesToTheNewestVersion() throws {
        let panel = try panel()
        let detail = try panel.get("/api/v1/machine-types/virt").json()
        #expect(detail["requested"] as? String == "virt")
        #expect(detail["canonical"] as? String == "virt-1.1")
        #expect(detail["name"] as? String == "virt-1.1")
        #expect(detail["version"] as? String == "1.1")
        #expect(detail["tier"] as? String == "versioned")
        #expect((detail["compatProperties"] as? [Any])?.isEmpty == true)
        let devices = try #require(detail["devices"] as? [[String: Any]])
        #expect(devices.map { $0["id"] as? String } == ["uart0", "finisher"])
        let state = try #require(devices[0]["state"] as? [String: Any])
        #expect(state["name"] as? String == "ns16550a")
        #expect(state["versionId"] as? Int == 2)
        #expect(state["minimumVersionId"] as? Int == 1)
        #expect(devices[0]["migration"] as? String == "vmstate")
        #expect((devices[0]["properties"] as? [String: String])?["fifo-depth"] == "64")
        #expect(devices[1]["migration"] as? String == "stateless")
        #expect(devices[1]["state"] == nil)
    }

    @Test func oldVersionCarriesItsCompatPropertiesAndDeprecation() throws {
        let panel = try panel()
        let detail = try panel.get("/api/v1/machine-types/virt-1.0").json()
        #expect(detail["canonical"] as? String == "virt-1.0")
        let compat = try #require(detail["compatProperties"] as? [[String: String]])
        #expect(compat == [["driver": "ns16550a", "property": "fifo-depth", "value": "16"]])
        let devices = try #require(detail["devices"] as? [[String: Any]])
        #expect((devices[0]["properties"] as? [String: String])?["fifo-depth"] == "16")
        #expect(detail["deprecated"] as? Bool == true)
        #expect(detail["deprecatedSince"] as? String == "2023-01-15T00:00:00Z")
        #expect((detail["deprecationReason"] as? String)?.contains("older than 3 years") == true)
        #expect(detail["releaseDate"] as? String == "2020-01-15T00:00:00Z")
    }

    @Test func tierNoneListsEachBlocker() throws {
        let panel = try panel()
        let detail = try panel.get("/api/v1/machine-types/passthrough").json()
        #expect(detail["tier"] as? String == "none")
        let blockers = try #require(detail["blockers"] as? [[String: String]])
        #expect(blockers == [["deviceId": "hostser0", "driver": "host-serial", "reason": "holds an open host tty"]])
        let devices = try #require(detail["devices"] as? [[String: Any]])
        #expect(devices.last?["migration"] as? String == "unmigratable")
        #expect(devices.last?["blocker"] as? String == "holds an open host tty")
    }

    @Test func unknownMachineTypeIs404NamingIt() throws {
        let panel = try panel()
        for path in ["/api/v1/machine-types/virt-9.9", "/api/v1/machine-types/virt-9.9/vmstate"] {
            let reply = try panel.get(path)
            #expect(reply.status == 404)
            #expect(reply.errorCode == "unknown_machine_type")
            let message = (try reply.json()["error"] as? [String: Any])?["message"] as? String
            #expect(message?.contains("'virt-9.9'") == true)
        }
        #expect(try panel.get("/api/v1/machine-types/virt", token: nil).status == 401)
    }

    @Test func vmstateIsQEMUsDumpOfTheCanonicalType() throws {
        let panel = try panel()
        let reply = try panel.get("/api/v1/machine-types/virt/vmstate")
        #expect(reply.status == 200)
        #expect(reply.header("Content-Type") == "application/json")
        #expect(reply.text == (try TestBoard.registry.resolve("virt-1.1").vmstateDump()))
        let dump = try reply.json()
        #expect((dump["vmschkmachine"] as? [String: Any])?["Name"] as? String == "virt-1.1")
        #expect((dump["ns16550a"] as? [String: Any])?["version_id"] as? Int == 2)
        #expect(dump["test-finisher"] == nil)
    }

    @Test func compatibilityWithoutFrozenReleasesHasOnlyTheCurrentColumn() throws {
        let panel = try panel()
        let matrix = try panel.get("/api/v1/compatibility").json()
        #expect(matrix["releases"] as? [String] == [Release.current])
        #expect(matrix["currentRelease"] as? String == Release.current)
        let rows = try #require(matrix["items"] as? [[String: Any]])
        #expect(rows.map { $0["machineType"] as? String } == ["virt-1.1", "virt-1.0", "sandbox", "passthrough"])
        let statuses = rows.map { (($0["cells"] as? [[String: Any]])?.first?["status"] as? String) ?? "?" }
        #expect(statuses == ["same", "same", "same", "blocked"])
        let blocked = try #require((rows[3]["cells"] as? [[String: Any]])?.first)
        #expect(blocked["forward"] as? Bool == false)
        #expect((blocked["reason"] as? String)?.contains("hostser0") == true)
    }

    @Test func compatibilityRunsTheCheckerBothWaysAgainstFrozenDumps() throws {
        let fixtures = NSTemporaryDirectory() + "emupanel-fixtures-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: fixtures) }
        let current = try TestBoard.registry.resolve("virt-1.0").vmstateDump()
        // 0.9 froze virt-1.0 before the FIFO-depth subsection existed: forward is clean,
        // backward only lacks a subsection that compat keeps unneeded → conditional.
        try freeze(fixtures, "0.9", "virt-1.0", withoutSubsections(current))
        try freeze(fixtures, "0.9", "virt-0.5", current.replacingOccurrences(of: "virt-1.0", with: "virt-0.5"))
        // 0.10 (sorted after 0.9) has a UART newer than ours: refused forward.
        try freeze(fixtures, "0.10", "virt-1.0", current.replacingOccurrences(of: "\"version_id\": 2", with: "\"version_id\": 3"))
        // 0.11 has the same UART at version 1 only: forward works, backward is refused.
        try freeze(
            fixtures, "0.11", "virt-1.0",
            current
                .replacingOccurrences(of: "\"version_id\": 2", with: "\"version_id\": 1"))
        try freeze(fixtures, "0.12", "virt-1.0", "{ not json")

        let panel = try panel(fixturesDir: fixtures)
        let matrix = try panel.get("/api/v1/compatibility").json()
        #expect(matrix["releases"] as? [String] == ["0.9", "0.10", "0.11", "0.12", Release.current])
        let rows = try #require(matrix["items"] as? [[String: Any]])
        func cells(_ name: String) throws -> [[String: Any]] {
            try #require(rows.first { $0["machineType"] as? String == name }?["cells"] as? [[String: Any]])
        }
        let virt10 = try cells("virt-1.0")
        #expect(virt10.map { $0["status"] as? String } == ["conditional", "incompatible", "forwardOnly", "incompatible", "same"])
        #expect(virt10[0]["forward"] as? Bool == true)
        #expect(virt10[0]["backward"] as? Bool == true)
        #expect(
            (virt10[0]["backwardProblems"] as? [String]) == [
                "Section \"ns16550a\" Description \"ns16550a\": Entry \"Subsections\" missing"
            ])
        #expect((virt10[1]["forwardProblems"] as? [String])?.contains("Section \"ns16550a\" version error: 3 > 2") == true)
        #expect(virt10[1]["forward"] as? Bool == false)
        #expect(virt10[2]["forward"] as? Bool == true)
        #expect(virt10[2]["backward"] as? Bool == false)
        #expect((virt10[2]["reason"] as? String)?.contains("version error: 2 > 1") == true)
        #expect((virt10[3]["reason"] as? String)?.contains("cannot be read") == true)

        #expect(try cells("virt-1.1").map { $0["status"] as? String } == ["absent", "absent", "absent", "absent", "same"])
        #expect(try cells("sandbox").first?["status"] as? String == "unchecked")
        #expect(try cells("passthrough").first?["status"] as? String == "blocked")
        let removed = try cells("virt-0.5")
        #expect(removed.map { $0["status"] as? String } == ["removed", "absent", "absent", "absent", "removed"])
        #expect(rows.first { $0["machineType"] as? String == "virt-0.5" }?["tier"] == nil)
    }

    private func freeze(_ fixtures: String, _ release: String, _ machine: String, _ dump: String) throws {
        try FileManager.default.createDirectory(atPath: "\(fixtures)/\(release)", withIntermediateDirectories: true)
        try dump.write(toFile: "\(fixtures)/\(release)/\(machine).vmstate.json", atomically: true, encoding: .utf8)
    }

    /// The dump with every description's "Subsections" removed.
    private func withoutSubsections(_ dump: String) throws -> String {
        func strip(_ value: JSONValue) -> JSONValue {
            switch value {
            case .object(let members): return .object(members.filter { $0.0 != "Subsections" }.map { ($0.0, strip($0.1)) })
            case .array(let items): return .array(items.map(strip))
            default: return value
            }
        }
        return strip(try JSONValue.parse(dump)).serialized(indent: 2)
    }
}
