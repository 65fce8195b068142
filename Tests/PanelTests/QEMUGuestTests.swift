import Foundation
import HTTPTestSupport
import Testing

@testable import PanelCore

/// QEMU as the panel's second backend (issue 12), against the installed qemu-system-riscv64:
/// discovery through the API, a guest's whole life over QMP, its console in the same buffer,
/// QEMU's events as the panel's, snapshots and restores, and a restart of the panel.
@Suite("QEMU guests", .serialized, .enabled(if: QEMUPanel.riscv64, "qemu-system-riscv64 is not installed"))
struct QEMUGuestTests {
    let helpers = GuestTests()

    @Test func hostAndMachineTypesListWhatQEMUReports() throws {
        let panel = try QEMUPanel.panel()
        // The list waits for a discovery still under way.
        let list = try panel.get("/api/v1/machine-types?backend=qemu")
        #expect(list.status == 200, "\(list.text)")
        let items = try #require(try list.json()["items"] as? [[String: Any]])
        #expect(items.allSatisfy { $0["backend"] as? String == "qemu" && $0["binary"] as? String == "qemu-system-riscv64" })
        let virt = try #require(items.first { $0["name"] as? String == "virt" })
        #expect(virt["tier"] as? String == "unversioned", "QEMU 7.2 has no versioned riscv64 types")
        #expect(virt["arch"] as? String == "riscv64")
        let version = try #require(virt["qemuVersion"] as? String)
        #expect(version.split(separator: ".").count == 3)

        let host = try panel.get("/api/v1/host").json()
        let qemu = try #require(host["qemu"] as? [String: Any])
        #expect(qemu["status"] as? String == "ready")
        let binaries = try #require(qemu["binaries"] as? [[String: Any]])
        #expect(binaries.map { $0["name"] as? String } == ["qemu-system-riscv64"])
        #expect(binaries.first?["version"] as? String == version)

        let builtin = try #require(try panel.get("/api/v1/machine-types?backend=builtin").json()["items"] as? [[String: Any]])
        #expect(!builtin.isEmpty && builtin.allSatisfy { $0["backend"] as? String == "builtin" })
        let both = try #require(try panel.get("/api/v1/machine-types").json()["items"] as? [[String: Any]])
        #expect(both.count == builtin.count + items.count)

        let detail = try panel.get("/api/v1/machine-types/virt?backend=qemu").json()
        #expect(detail["tier"] as? String == "unversioned" && detail["qemuVersion"] as? String == version)
        let dump = try panel.get("/api/v1/machine-types/virt/vmstate?backend=qemu").json()
        #expect((dump["vmschkmachine"] as? [String: Any])?["Name"] != nil, "QEMU's own -dump-vmstate")
        #expect(dump.count > 10, "every device QEMU can describe")
        #expect(try panel.get("/api/v1/machine-types/no-such-board?backend=qemu").status == 404)
        #expect(try panel.get("/api/v1/machine-types?backend=kvm").status == 400)
    }

    /// x86_64: versioned PC types, and SeaBIOS with no disk on the serial console.
    @Test(.enabled(if: QEMUPanel.x86_64, "qemu-system-x86_64 is not installed"))
    func pcTypesAreVersionedAndSeaBIOSTalksOnTheConsole() throws {
        let panel = try QEMUPanel.panel(binaries: ["qemu-system-x86_64"])
        try QEMUPanel.waitForDiscovery(panel)
        let items = try #require(try panel.get("/api/v1/machine-types?backend=qemu").json()["items"] as? [[String: Any]])
        let q35 = try #require(items.first { $0["name"] as? String == "pc-q35-7.2" })
        #expect(q35["tier"] as? String == "versioned" && q35["arch"] as? String == "x86_64", "\(q35)")
        let created = try panel.send(
            "POST", "/api/v1/guests",
            json: [
                "name": "pc", "image": "seabios", "machineType": "q35", "memoryMiB": 128, "backend": "qemu",
            ])
        #expect(created.status == 201, "\(created.text)")
        let guest = try created.json()
        #expect(guest["machineType"] as? String != "q35", "the alias is resolved to the type it names: \(guest)")
        let id = try #require(guest["id"] as? String)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/start").status == 200)
        _ = try helpers.waitForConsole(panel, id, "SeaBIOS")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
    }

    @Test func createRefusesWhatQEMUCannotRun() throws {
        let panel = try QEMUPanel.panel()
        let valid: [String: Any] = ["name": "q", "image": "uart-echo", "machineType": "virt", "memoryMiB": 64, "backend": "qemu"]
        func create(_ change: [String: Any]) throws -> RawHTTPConnection.Reply {
            try panel.send("POST", "/api/v1/guests", json: valid.merging(change) { $1 })
        }
        #expect(try create(["machineType": "pc-q35-7.2"]).errorCode == "unknown_machine_type")
        #expect(try create(["binary": "qemu-system-nope"]).errorCode == "qemu_missing")
        #expect(try create(["icount": true]).errorCode == "invalid_clock")
        #expect(try create(["image": "seabios"]).errorCode == "image_mismatch", "an x86 image on a riscv64 machine")
        let created = try create([:])
        #expect(created.status == 201, "\(created.text)")
        let guest = try created.json()
        #expect(guest["backend"] as? String == "qemu" && guest["binary"] as? String == "qemu-system-riscv64")
        #expect(guest["machineType"] as? String == "virt")
    }

    @Test func lifecycleConsoleAndEventsGoThroughQMP() throws {
        let panel = try QEMUPanel.panel()
        let id = try QEMUPanel.started(panel, name: "echo", image: "uart-echo")
        var console = try helpers.waitForConsole(panel, id, "'q' quits")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/console", json: ["data": "abc"]).status == 204)
        console = try helpers.waitForConsole(panel, id, "abc", since: console.next)

        #expect(try panel.send("POST", "/api/v1/guests/\(id)/pause").status == 200)
        #expect(try panel.get("/api/v1/guests/\(id)").json()["state"] as? String == "paused")
        let runtime = try #require(try panel.app.services.guests.runtime(id) as? QEMURuntime)
        #expect(runtime.runsNow == false, "QEMU itself says paused")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/resume").status == 200)
        #expect(runtime.runsNow == true)

        #expect(try panel.send("POST", "/api/v1/guests/\(id)/reset").status == 200)
        console = try helpers.waitForConsole(panel, id, "'q' quits", since: console.next)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
        #expect(try panel.get("/api/v1/guests/\(id)").json()["state"] as? String == "stopped")
        #expect(!runtime.isAlive, "stop ends the QEMU process")

        // The guest powers off by itself ('q' writes the test finisher): QEMU exits, the panel says so.
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/start").status == 200)
        console = try helpers.waitForConsole(panel, id, "'q' quits", since: console.next)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/console", json: ["data": "q"]).status == 204)
        try QEMUPanel.waitForState(panel, id, "stopped")
        let events = panel.app.events.page(since: 0).items.filter { $0.subject == id }
        let deadline = Date().addingTimeInterval(10)
        var reasons: [JSON] = []
        while Date() < deadline {
            reasons = panel.app.events.page(since: 0).items.filter { $0.subject == id && $0.type == "guest.state" }.compactMap { $0.data["reason"] }
            if reasons.contains(.string("powered off")) { break }
            usleep(10_000)
        }
        #expect(reasons.contains(.string("powered off")), "\(reasons)")
        let qemuEvents = events.filter { $0.type == "guest.qemu" }.compactMap { $0.data["event"] }
        #expect(qemuEvents.contains(.string("RESET")), "QEMU's RESET event: \(qemuEvents)")
        let log = panel.dataDir + "/guests/\(id)/qemu.log"
        #expect(FileManager.default.fileExists(atPath: log), "QEMU's stderr goes to the guest's log")
    }

    /// A restore pauses the running guest while the snapshot loads; one that fails (a damaged
    /// file) leaves it running as before, its own check still passing.
    @Test func aFailedRestoreLeavesTheRunningGuestRunning() throws {
        let panel = try QEMUPanel.panel()
        let id = try QEMUPanel.started(panel, name: "pattern", image: "memory-pattern")
        let console = try helpers.waitForConsole(panel, id, "pass 32 ok")
        let saved = try helpers.waitForTask(panel, try panel.send("POST", "/api/v1/guests/\(id)/snapshots", json: ["name": "one"]))
        #expect(saved["status"] as? String == "succeeded", "\(saved)")
        let path = panel.dataDir + "/guests/\(id)/snapshots/one.qevm"
        try flipMiddleByte(of: path)
        let restore = try helpers.waitForTask(panel, try panel.send("POST", "/api/v1/guests/\(id)/snapshots/one/restore"))
        #expect(restore["status"] as? String == "failed", "\(restore)")
        #expect(try panel.get("/api/v1/guests/\(id)").json()["state"] as? String == "running")
        // Output after the failed restore: the guest was resumed.
        let after = try helpers.waitForConsole(panel, id, " ok", since: console.next)
        let more = try helpers.waitForConsole(panel, id, " ok", since: after.next)
        #expect(!more.text.contains("holds"), "\(more.text.suffix(300))")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
    }

    @Test func snapshotsAndRestoreKeepTheGuestsOwnCheckPassing() throws {
        let panel = try QEMUPanel.panel()
        let id = try QEMUPanel.started(panel, name: "pattern", image: "memory-pattern")
        var console = try helpers.waitForConsole(panel, id, "pass 32 ok")
        let first = try helpers.waitForTask(
            panel,
            try panel.send(
                "POST", "/api/v1/guests/\(id)/snapshots",
                json: ["name": "one", "description": "running"]))
        #expect(first["status"] as? String == "succeeded", "\(first)")
        #expect(try panel.get("/api/v1/guests/\(id)").json()["state"] as? String == "running", "a running guest runs on")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/pause").status == 200)
        let second = try helpers.waitForTask(panel, try panel.send("POST", "/api/v1/guests/\(id)/snapshots", json: ["name": "two"]))
        #expect(second["status"] as? String == "succeeded", "\(second)")
        #expect(try panel.get("/api/v1/guests/\(id)").json()["state"] as? String == "paused", "a paused guest stays paused")
        let list = try #require(try panel.get("/api/v1/guests/\(id)/snapshots").json()["items"] as? [[String: Any]])
        #expect(list.count == 2)
        #expect(list.first { $0["name"] as? String == "two" }?["parent"] as? String == "one", "the same tree as built-in snapshots")
        let file = panel.dataDir + "/guests/\(id)/snapshots/one.qevm"
        let checksum = list.first { $0["name"] as? String == "one" }?["checksum"] as? String
        #expect(checksum != nil, "recorded with its checksum")
        #expect(FileManager.default.fileExists(atPath: file))

        let restore = try helpers.waitForTask(panel, try panel.send("POST", "/api/v1/guests/\(id)/snapshots/one/restore"))
        #expect(restore["status"] as? String == "succeeded", "\(restore)")
        console = try helpers.waitForConsole(panel, id, " ok", since: console.next)
        #expect(!console.text.contains("holds"), "the guest's own check passes after the restore: \(console.text.suffix(300))")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
    }

    /// A clean stop saves QEMU guests like built-in ones (managed save) and the next start brings
    /// them back from the saved file; a QEMU a killed panel left is ended at the next start.
    @Test func aRestartSavesAndResumesQEMUGuests() throws {
        let dataDir = NSTemporaryDirectory() + "emupanel-qemu-restart-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        var id = ""
        do {
            let panel = try QEMUPanel.panel(dataDir: dataDir)
            id = try QEMUPanel.started(panel, name: "echo", image: "uart-echo")
            _ = try helpers.waitForConsole(panel, id, "'q' quits")
            #expect(try panel.send("POST", "/api/v1/guests/\(id)/console", json: ["data": "before"]).status == 204)
            _ = try helpers.waitForConsole(panel, id, "before")
        }
        let panel = try QEMUPanel.panel(dataDir: dataDir)
        #expect(try panel.get("/api/v1/guests/\(id)").json()["state"] as? String == "running")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/console", json: ["data": "q"]).status == 204)
        // The echo guest counts what it echoed since it started: 6 bytes before the restart, 'q' after.
        _ = try helpers.waitForConsole(panel, id, "echo: 7 bytes")
        try QEMUPanel.waitForState(panel, id, "stopped")
    }
}
