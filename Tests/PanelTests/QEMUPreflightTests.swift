import Foundation
import HTTPTestSupport
import QEMUBackend
import Testing

@testable import PanelCore

/// Pre-flight for QEMU guests (issue 12 item 6): the tier's promise on the two QEMU versions,
/// and the destination's refusals with their reasons before any RAM moves.
@Suite("QEMU pre-flight")
struct QEMUPreflightTests {
    let q72 = QEMUVersion(major: 7, minor: 2, micro: 0)
    let q80 = QEMUVersion(major: 8, minor: 0, micro: 0)

    @Test func versionedTypesMoveForwardOnly() {
        let type = QEMUMachineType(name: "pc-q35-7.2", alias: "q35")
        #expect(QEMUGuestBackend.tierCheck(type, ours: q80, theirs: q72).ok, "7.2 → 8.0 is forward")
        #expect(QEMUGuestBackend.tierCheck(type, ours: q72, theirs: q72).ok)
        let back = QEMUGuestBackend.tierCheck(type, ours: q72, theirs: q80)
        #expect(!back.ok && back.detail.contains("older"), "\(back.detail)")
    }

    @Test func unversionedTypesMoveBetweenTheSameQEMUOnly() {
        let type = QEMUMachineType(name: "virt")
        #expect(QEMUGuestBackend.tierCheck(type, ours: q72, theirs: q72).ok)
        for (ours, theirs) in [(q80, q72), (q72, q80)] {
            let check = QEMUGuestBackend.tierCheck(type, ours: ours, theirs: theirs)
            #expect(!check.ok && check.detail.contains("same QEMU version"), "\(check.detail)")
        }
    }

    @Test func aBlockerIsNamed() {
        let type = QEMUMachineType(name: "pc-q35-7.2", blockers: [QEMUMigrationBlocker(qemuReason: "non-migratable device: 0000:00:03.0/nvme")])
        let check = QEMUGuestBackend.tierCheck(type, ours: q72, theirs: q72)
        #expect(!check.ok && check.detail.contains("nvme"), "\(check.detail)")
    }

    /// A destination with no QEMU for the guest's architecture, or another QEMU version for an
    /// unversioned type, refuses before any RAM moves, saying why.
    @Test(.enabled(if: QEMUPanel.riscv64 && QEMUPanel.x86_64, "needs qemu-system-riscv64 and qemu-system-x86_64"))
    func destinationsRefuseWithTheirReasons() throws {
        let source = try QEMUPanel.panel()
        let id = try QEMUPanel.started(source, name: "echo", image: "uart-echo")
        let onlyX86 = try QEMUPanel.panel(binaries: ["qemu-system-x86_64"])
        try QEMUPanel.waitForDiscovery(onlyX86)
        let answer = try source.send(
            "POST", "/api/v1/guests/\(id)/migrate/preflight",
            json: ["target": ["url": "http://127.0.0.1:\(onlyX86.port)", "token": PanelFixture.token]]
        ).json()
        #expect(answer["go"] as? Bool == false)
        let reasons = (answer["reasons"] as? [String] ?? []).joined(separator: "; ")
        #expect(reasons.contains("no QEMU for riscv64"), "\(reasons)")
        let migrate = try GuestTests().waitForTask(
            source,
            try source.send(
                "POST", "/api/v1/guests/\(id)/migrate",
                json: [
                    "target": ["url": "http://127.0.0.1:\(onlyX86.port)", "token": PanelFixture.token]
                ]))
        #expect(migrate["status"] as? String == "failed")
        #expect((migrate["error"] as? String ?? "").contains("no QEMU for riscv64"), "\(migrate)")
        #expect(try source.get("/api/v1/guests/\(id)").json()["state"] as? String == "running")
        #expect(try source.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
    }

    /// Machine type × QEMU version from this host's dumps and a peer's, checked both ways; a peer
    /// that does not answer is named, not fatal.
    @Test(.enabled(if: QEMUPanel.riscv64, "needs qemu-system-riscv64"))
    func compatibilityMatrixHasAColumnPerQEMU() throws {
        let peer = try QEMUPanel.panel()
        let early = try PanelFixture(machines: .empty) { configuration in
            configuration.settings.qemu = .init(enabled: true, binaries: ["qemu-system-riscv64"], cacheDir: QEMUPanel.cache)
            configuration.settings.peers = [.init(name: "b", url: "http://127.0.0.1:\(peer.port)", token: PanelFixture.token)]
        }
        // Asked before the peer has probed its QEMUs, the matrix says so instead of leaving it out.
        if (try peer.get("/api/v1/host").json()["qemu"] as? [String: Any])?["status"] as? String != "ready" {
            let reply = try RawHTTPConnection(port: early.port, timeout: 120)
                .request("GET", "/api/v1/compatibility?backend=qemu", headers: ["Authorization": "Bearer \(PanelFixture.token)"])
            let unreachable = (try reply.json()["unreachablePeers"] as? [String]) ?? []
            let answered = (try reply.json()["releases"] as? [String] ?? []).contains { $0.hasPrefix("b: ") }
            #expect(answered || unreachable.contains { $0.contains("still running") }, "\(reply.text.prefix(300))")
        }
        try QEMUPanel.waitForDiscovery(peer)
        let panel = try PanelFixture(machines: .empty) { configuration in
            configuration.settings.qemu = .init(enabled: true, binaries: ["qemu-system-riscv64"], cacheDir: QEMUPanel.cache)
            configuration.settings.peers = [
                .init(name: "b", url: "http://127.0.0.1:\(peer.port)", token: PanelFixture.token),
                .init(name: "gone", url: "http://127.0.0.1:9", token: "x"),
            ]
        }
        // Every dump read and checked: longer than the client's usual 10 s on a busy debug build.
        let reply = try RawHTTPConnection(port: panel.port, timeout: 120)
            .request("GET", "/api/v1/compatibility?backend=qemu", headers: ["Authorization": "Bearer \(PanelFixture.token)"])
        #expect(reply.status == 200, "\(reply.text.prefix(300))")
        let document = try reply.json()
        let columns = try #require(document["releases"] as? [String])
        #expect(columns.count == 2 && columns[1].hasPrefix("b: qemu-system-riscv64 "), "\(columns)")
        #expect((document["unreachablePeers"] as? [String])?.first?.hasPrefix("gone") == true)
        let rows = try #require(document["items"] as? [[String: Any]])
        let virt = try #require(rows.first { $0["machineType"] as? String == "virt" })
        let cells = try #require(virt["cells"] as? [[String: Any]])
        #expect(cells.map { $0["status"] as? String } == ["same", "compatible"], "\(cells)")
        #expect(cells[1]["forward"] as? Bool == true && cells[1]["backward"] as? Bool == true)
    }
}
