import CXXHash
import Foundation
import HTTPTestSupport
import PanelCore
import PanelHTTP
import RISCV
import Testing

/// Guests, console, snapshots and restarts through the real API, with the real machine types.
@Suite("Guests and snapshots", .serialized)
struct GuestTests {
    func panel(dataDir: String? = nil) throws -> PanelFixture {
        try PanelFixture(machines: VirtMachineTypes.registry) { configuration in
            if let dataDir { configuration.settings.dataDir = dataDir }
        }
    }

    func create(_ panel: PanelFixture, _ body: [String: Any]) throws -> RawHTTPConnection.Reply {
        try panel.send("POST", "/api/v1/guests", json: body)
    }

    /// Polls the console until `needle` appears after `since`; returns the offset after it.
    func waitForConsole(
        _ panel: PanelFixture, _ id: String, _ needle: String, since: Int = 0, timeout: Double = 60
    ) throws -> (text: String, next: Int) {
        var text = ""
        var next = since
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let chunk = try panel.get("/api/v1/guests/\(id)/console?since=\(next)&wait=2").json()
            text += chunk["data"] as? String ?? ""
            next = chunk["next"] as? Int ?? next
            if text.contains(needle) { return (text, next) }
        }
        Issue.record("console never showed \(needle.debugDescription); it showed \(text.suffix(400).debugDescription)")
        return (text, next)
    }

    func waitForTask(_ panel: PanelFixture, _ reply: RawHTTPConnection.Reply) throws -> [String: Any] {
        #expect(reply.status == 202, "\(reply.text)")
        let id = try #require((try reply.json()["task"] as? [String: Any])?["id"] as? String)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let task = try panel.get("/api/v1/tasks/\(id)").json()
            if let status = task["status"] as? String, ["succeeded", "failed", "cancelled"].contains(status) { return task }
            usleep(50_000)
        }
        Issue.record("task \(id) did not finish")
        return [:]
    }

    @Test func badInputGetsClearErrors() throws {
        let panel = try panel()
        let valid: [String: Any] = ["name": "g1", "image": "uboot", "machineType": "virt", "memoryMiB": 128]
        #expect(try create(panel, valid.merging(["name": "bad name!"]) { $1 }).errorCode == "invalid_name")
        #expect(try create(panel, valid.merging(["name": String(repeating: "a", count: 41)]) { $1 }).errorCode == "invalid_name")
        #expect(try create(panel, valid.merging(["image": "/etc/passwd"]) { $1 }).errorCode == "unknown_image")
        #expect(try create(panel, valid.merging(["machineType": "pc-q35"]) { $1 }).errorCode == "unknown_machine_type")
        #expect(try create(panel, valid.merging(["memoryMiB": 8]) { $1 }).errorCode == "invalid_memory")
        #expect(try create(panel, valid.merging(["memoryMiB": "lots"]) { $1 }).status == 400)
        #expect(
            try create(panel, valid.merging(["memoryMiB": 3000]) { $1 }).errorCode == "invalid_memory",
            "no more than the board maps, so a created guest can start")
        let created = try create(panel, valid)
        #expect(created.status == 201)
        #expect(try created.json()["machineType"] as? String == "virt-1.2", "the alias is resolved to the newest version and recorded")
        #expect(try create(panel, valid).status == 409)
        let id = try #require(try created.json()["id"] as? String)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/pause").errorCode == "invalid_state")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/console", json: ["data": "x"]).status == 409)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/snapshots", json: ["name": "s"]).status == 409)
        #expect(try panel.get("/api/v1/guests/nope").status == 404)
        #expect(try panel.send("DELETE", "/api/v1/guests/\(id)").status == 204)
    }

    @Test func uBootGuestRunsSnapshotsRestoresAndSurvivesARestart() throws {
        let dataDir = NSTemporaryDirectory() + "emupanel-guests-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        var id = ""
        do {
            let panel = try panel(dataDir: dataDir)
            let created = try create(panel, ["name": "uboot", "image": "uboot", "machineType": "virt", "memoryMiB": 128])
            id = try #require(try created.json()["id"] as? String)
            #expect(try panel.send("POST", "/api/v1/guests/\(id)/start").status == 200)
            var console = try waitForConsole(panel, id, "=> ")
            #expect(try panel.send("POST", "/api/v1/guests/\(id)/console", json: ["data": "version\r"]).status == 204)
            console = try waitForConsole(panel, id, "GNU ld", since: console.next)

            let snapshot = try waitForTask(
                panel,
                try panel.send(
                    "POST", "/api/v1/guests/\(id)/snapshots",
                    json: ["name": "at-prompt", "description": "U-Boot prompt"]))
            #expect(snapshot["status"] as? String == "succeeded")
            #expect((snapshot["detail"] as? [String: Any])?["pauseMs"] != nil, "the pause is reported")
            #expect(try panel.send("POST", "/api/v1/guests/\(id)/snapshots", json: ["name": "at-prompt"]).status == 409)
            let second = try waitForTask(panel, try panel.send("POST", "/api/v1/guests/\(id)/snapshots", json: ["name": "child"]))
            #expect(second["status"] as? String == "succeeded")
            let list = try #require(try panel.get("/api/v1/guests/\(id)/snapshots").json()["items"] as? [[String: Any]])
            #expect(list.count == 2)
            #expect(list.first { $0["name"] as? String == "child" }?["parent"] as? String == "at-prompt", "snapshots form a tree")

            let restore = try waitForTask(panel, try panel.send("POST", "/api/v1/guests/\(id)/snapshots/at-prompt/restore"))
            #expect(restore["status"] as? String == "succeeded")
            #expect(try panel.send("POST", "/api/v1/guests/\(id)/console", json: ["data": "version\r"]).status == 204)
            console = try waitForConsole(panel, id, "U-Boot 2023", since: console.next)
            #expect(try panel.get("/api/v1/guests/\(id)").json()["state"] as? String == "running")
        }
        // A snapshot a crash interrupted left its temporary file: the next start removes it.
        let snapshotDir = dataDir + "/guests/\(id)/snapshots"
        let interrupted = snapshotDir + "/.crashed.qevm.partial-0badf00d"
        #expect(FileManager.default.createFile(atPath: interrupted, contents: Data(count: 4096)))
        // The panel stopped: the running guest was saved and comes back running.
        let panel = try panel(dataDir: dataDir)
        #expect(!FileManager.default.fileExists(atPath: interrupted))
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: snapshotDir)) == ["at-prompt.qevm", "child.qevm"])
        let guest = try panel.get("/api/v1/guests/\(id)").json()
        #expect(guest["state"] as? String == "running")
        let snapshots = try panel.get("/api/v1/guests/\(id)/snapshots").json()["items"] as? [[String: Any]]
        #expect(snapshots?.count == 2)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/console", json: ["data": "version\r"]).status == 204)
        _ = try waitForConsole(panel, id, "U-Boot 2023")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
        #expect(try panel.send("DELETE", "/api/v1/guests/\(id)/snapshots/at-prompt").status == 204)
        let remaining = try panel.get("/api/v1/guests/\(id)/snapshots").json()["items"] as? [[String: Any]]
        #expect(remaining?.first?["parent"] is NSNull, "the child moved up to the deleted snapshot's parent")
    }

    @Test func finishedGuestIsStoppedWithAnEvent() throws {
        let panel = try panel()
        let created = try create(panel, ["name": "paging", "image": "sv39", "machineType": "virt-1.0", "memoryMiB": 64])
        let id = try #require(try created.json()["id"] as? String)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/start").status == 200)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, try panel.get("/api/v1/guests/\(id)").json()["state"] as? String != "stopped" { usleep(50_000) }
        #expect(try panel.get("/api/v1/guests/\(id)").json()["state"] as? String == "stopped")
        // The event follows the record's change: wait for it rather than race it.
        func reasons() -> [JSON] {
            panel.app.events.page(since: 0).items.filter { $0.subject == id && $0.type == "guest.state" }.compactMap { $0.data["reason"] }
        }
        while Date() < deadline, !reasons().contains(.string("powered off")) { usleep(10_000) }
        #expect(reasons().contains(.string("powered off")))
    }

    /// A full disk during a snapshot: the task fails naming the cause, no partial file stays behind,
    /// and the guest keeps running. Needs root to mount a tiny tmpfs (CI runs as root).
    @Test(.enabled(if: TinyDisk.canMount, "mounting a tmpfs needs root"))
    func fullDiskDuringASnapshotLosesNothing() throws {
        let disk = try TinyDisk(megabytes: 1)
        try withExtendedLifetime(disk) { try snapshotOnAFullDisk(mountPoint: disk.path) }
    }

    private func snapshotOnAFullDisk(mountPoint: String) throws {
        let panel = try panel(dataDir: mountPoint + "/data")
        let created = try create(panel, ["name": "full", "image": "uboot", "machineType": "virt", "memoryMiB": 128])
        let id = try #require(try created.json()["id"] as? String)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/start").status == 200)
        let console = try waitForConsole(panel, id, "=> ")
        let task = try waitForTask(panel, try panel.send("POST", "/api/v1/guests/\(id)/snapshots", json: ["name": "big"]))
        #expect(task["status"] as? String == "failed")
        #expect((task["error"] as? String)?.contains("No space left") == true, "\(task)")
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: mountPoint + "/data/guests/\(id)/snapshots")) ?? []
        #expect(leftovers.isEmpty, "no partial file: \(leftovers)")
        #expect((try panel.get("/api/v1/guests/\(id)/snapshots").json()["items"] as? [Any])?.isEmpty == true)
        #expect(try panel.get("/api/v1/guests/\(id)").json()["state"] as? String == "running")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/console", json: ["data": "version\r"]).status == 204)
        _ = try waitForConsole(panel, id, "U-Boot 2023", since: console.next)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
    }

    /// A guest that does not read its UART: input piles up only to the cap, then 409.
    @Test func consoleInputIsRefusedWhenTheGuestDoesNotReadIt() throws {
        let panel = try panel()
        let created = try create(panel, ["name": "deaf", "image": "memory-pattern", "machineType": "virt", "memoryMiB": 64])
        let id = try #require(try created.json()["id"] as? String)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/start").status == 200)
        let text = String(repeating: "x", count: 4096)
        var accepted = 0
        var last = 0
        for _ in 0..<20 {
            last = try panel.send("POST", "/api/v1/guests/\(id)/console", json: ["data": text]).status
            if last != 204 { break }
            accepted += 1
        }
        #expect(accepted == SerialConsole.inputCapacity / 4096 && last == 409, "\(accepted) accepted, then \(last)")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
    }

    /// A snapshot file damaged on disk: the restore fails naming the checksum, the guest runs on
    /// as it was, and the snapshot stays listed (so the user can see and delete it).
    @Test func damagedSnapshotIsNotApplied() throws {
        let panel = try panel()
        let created = try create(panel, ["name": "damaged", "image": "uboot", "machineType": "virt", "memoryMiB": 128])
        let id = try #require(try created.json()["id"] as? String)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/start").status == 200)
        let console = try waitForConsole(panel, id, "=> ")
        let snapshot = try waitForTask(panel, try panel.send("POST", "/api/v1/guests/\(id)/snapshots", json: ["name": "s"]))
        #expect(snapshot["status"] as? String == "succeeded")
        let checksum = try #require((snapshot["detail"] as? [String: Any])?["checksum"] as? String)
        let path = panel.dataDir + "/guests/\(id)/snapshots/s.qevm"
        #expect(try xxh128(path) == checksum, "the recorded checksum is the file's XXH3-128, as xxh128sum prints it")

        try flipMiddleByte(of: path)

        let restore = try waitForTask(panel, try panel.send("POST", "/api/v1/guests/\(id)/snapshots/s/restore"))
        #expect(restore["status"] as? String == "failed")
        #expect((restore["error"] as? String)?.contains("does not match its recorded checksum") == true, "\(restore)")
        #expect(try panel.get("/api/v1/guests/\(id)").json()["state"] as? String == "running")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/console", json: ["data": "version\r"]).status == 204)
        _ = try waitForConsole(panel, id, "U-Boot 2023", since: console.next)
        #expect((try panel.get("/api/v1/guests/\(id)/snapshots").json()["items"] as? [Any])?.count == 1)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
    }

    func xxh128(_ path: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let hash = data.withUnsafeBytes { XXH3_128bits($0.baseAddress, $0.count) }
        return "xxh128:" + [hash.high64, hash.low64].map { String(format: "%016llx", UInt64($0)) }.joined()
    }
}
