// /api/v1/compatibility over the repository's real frozen releases and the real virt board:
// virt-1.0 moves both ways between 1.0, 1.1 and this release; virt-1.1 between 1.1 and this one.
import EmulatorCore
import Foundation
import HTTPTestSupport
import PanelCore
import PanelHTTP
import RISCV
import Testing

@Suite("Frozen releases API")
struct FrozenReleaseAPITests {
    static let fixturesDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/releases").path

    @Test func versionedTypesMoveBetweenEveryReleaseThatKnowsThem() throws {
        #expect(Release.current == "1.2")
        let panel = try PanelFixture(machines: VirtMachineTypes.registry) { $0.settings.fixturesDir = Self.fixturesDir }
        let matrix = try panel.get("/api/v1/compatibility").json()
        #expect(matrix["releases"] as? [String] == ["1.0", "1.1", "1.2"])
        let rows = try #require(matrix["items"] as? [[String: Any]])
        func cells(_ name: String) throws -> [[String: Any]] {
            try #require(rows.first { $0["machineType"] as? String == name }?["cells"] as? [[String: Any]])
        }
        let virt10 = try cells("virt-1.0")
        #expect(virt10.map { $0["status"] as? String } == ["compatible", "compatible", "same"])
        #expect(virt10[0]["forward"] as? Bool == true)
        #expect(virt10[0]["backward"] as? Bool == true)
        #expect((virt10[0]["forwardProblems"] as? [String])?.isEmpty == true)
        #expect((virt10[0]["backwardProblems"] as? [String])?.isEmpty == true)
        #expect(try cells("virt-1.1").map { $0["status"] as? String } == ["absent", "compatible", "same"])
        #expect(try cells("virt-1.2").map { $0["status"] as? String } == ["absent", "absent", "same"])
        let blocked = try cells("sandbox-hostrng")
        #expect(blocked.map { $0["status"] as? String } == ["blocked", "blocked", "blocked"])
        #expect((blocked[0]["reason"] as? String)?.contains("/dev/urandom") == true)

        let detail = try panel.get("/api/v1/machine-types/sandbox-hostrng").json()
        #expect(detail["tier"] as? String == "none")
        let blockers = try #require(detail["blockers"] as? [[String: Any]])
        #expect(blockers.count == 1)
        #expect("\(blockers[0])".contains("rng0") && "\(blockers[0])".contains("/dev/urandom"))
        let virt = try panel.get("/api/v1/machine-types/virt").json()
        #expect(virt["canonical"] as? String == "virt-1.2")
    }
}
