import Foundation
import GRDB
import HTTPTestSupport
import Migration
import RISCV
import Testing

@testable import PanelCore
@testable import PanelHTTP

/// What a restart, a crash or a full disk leaves behind: the saved state is never lost, never
/// loaded when damaged, a paused guest does not run a single instruction across a restart, and
/// what recovery finds is said (GET /host `warnings`).
extension GuestTests {
    func hostWarnings(_ panel: PanelFixture) throws -> [String] {
        try panel.get("/api/v1/host").json()["warnings"] as? [String] ?? []
    }

    /// A paused guest is saved paused and comes back parked before its first instruction: the
    /// count of retired instructions and the console do not move across the restart.
    @Test func pausedGuestDoesNotRunAcrossARestart() throws {
        let dataDir = NSTemporaryDirectory() + "emupanel-parked-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        var id = ""
        var retired: UInt64 = 0
        do {
            let panel = try panel(dataDir: dataDir)
            id = try startEcho(panel, name: "parked")
            #expect(try panel.send("POST", "/api/v1/guests/\(id)/pause").status == 200)
            retired = try #require(try panel.app.services.guests.runtime(id) as? BuiltinRuntime).machine.instructionsRetired
        }
        let panel = try panel(dataDir: dataDir)
        #expect(try state(panel, id) == "paused")
        let runtime = try #require(try panel.app.services.guests.runtime(id) as? BuiltinRuntime)
        #expect(runtime.machine.control.isPaused || runtime.machine.instructionsRetired == retired)
        #expect(runtime.machine.instructionsRetired == retired, "not one instruction ran before it was parked")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/console", json: ["data": "z"]).status == 204)
        let quiet = try panel.get("/api/v1/guests/\(id)/console?since=0&wait=1").json()
        #expect(quiet["data"] as? String == "", "a parked guest prints nothing")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/resume").status == 200)
        _ = try waitForConsole(panel, id, "z")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
    }

    /// A flipped byte in a managed save is caught by its checksum: the guest is not resumed from
    /// it, the file is kept aside, and the start says why.
    @Test func damagedManagedSaveIsNotLoaded() throws {
        let dataDir = NSTemporaryDirectory() + "emupanel-flipped-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        var id = ""
        do {
            let panel = try panel(dataDir: dataDir)
            id = try startEcho(panel, name: "flipped")
        }
        let saved = dataDir + "/guests/\(id)/managed-save.qevm"
        var bytes = try #require(FileManager.default.contents(atPath: saved))
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: saved))
        let panel = try panel(dataDir: dataDir)
        #expect(try state(panel, id) == "stopped", "not resumed from a damaged save")
        #expect(FileManager.default.fileExists(atPath: saved + ".rejected"))
        #expect(try hostWarnings(panel).contains { $0.contains("could not resume") && $0.contains("flipped") })
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/start").status == 200, "the next start boots afresh")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
    }

    /// A managed save whose file went (a directory removed by hand): the guest is not booted
    /// afresh as if it had been resumed; it stays stopped, the host says why, and only a start
    /// asked for boots it afresh.
    @Test func missingManagedSaveIsSaidNotSilentlyRebooted() throws {
        let dataDir = NSTemporaryDirectory() + "emupanel-vanished-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        var id = ""
        do {
            let panel = try panel(dataDir: dataDir)
            id = try startEcho(panel, name: "vanished")
        }
        try FileManager.default.removeItem(atPath: dataDir + "/guests/\(id)")
        let panel = try panel(dataDir: dataDir)
        #expect(try state(panel, id) == "stopped")
        #expect(try hostWarnings(panel).contains { $0.contains("vanished") && $0.contains("missing") })
        #expect(try panel.get("/api/v1/guests/\(id)").json()["managedSave"] == nil, "no save is promised any more")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/start").status == 200, "a start boots it afresh")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
    }

    /// A database that went (deleted, or replaced by an empty one) while guest directories stay:
    /// the panel starts, and says which directories no guest owns.
    @Test func lostDatabaseIsReported() throws {
        let dataDir = NSTemporaryDirectory() + "emupanel-lostdb-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        var id = ""
        do {
            let panel = try panel(dataDir: dataDir)
            id = try #require(
                try create(panel, ["name": "orphan", "image": "uart-echo", "machineType": "virt", "memoryMiB": 64])
                    .json()["id"] as? String)
            #expect(try panel.send("POST", "/api/v1/guests/\(id)/start").status == 200)
        }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: dataDir + "/emupanel.sqlite" + suffix) }
        let panel = try panel(dataDir: dataDir)
        #expect((try panel.get("/api/v1/guests").json()["items"] as? [Any])?.isEmpty == true)
        #expect(try hostWarnings(panel).contains { $0.contains(id) && $0.contains("database") })
    }

    /// A crash between a snapshot file's rename and its record, or a record whose file went:
    /// the next start makes them agree, and says so.
    @Test func snapshotFilesAndRecordsAgreeAfterACrash() throws {
        let dataDir = NSTemporaryDirectory() + "emupanel-agree-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        var id = ""
        do {
            let panel = try panel(dataDir: dataDir)
            id = try startEcho(panel, name: "agree")
            for name in ["kept", "lost"] {
                let task = try waitForTask(panel, try panel.send("POST", "/api/v1/guests/\(id)/snapshots", json: ["name": name]))
                #expect(task["status"] as? String == "succeeded")
            }
        }
        let snapshots = dataDir + "/guests/\(id)/snapshots/"
        try FileManager.default.removeItem(atPath: snapshots + "lost.qevm")
        try FileManager.default.copyItem(atPath: snapshots + "kept.qevm", toPath: snapshots + "unrecorded.qevm")
        let panel = try panel(dataDir: dataDir)
        let names = (try panel.get("/api/v1/guests/\(id)/snapshots").json()["items"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(names == ["kept"])
        #expect(!FileManager.default.fileExists(atPath: snapshots + "unrecorded.qevm"))
        let warnings = try hostWarnings(panel)
        #expect(warnings.contains { $0.contains("'lost'") }, "\(warnings)")
        #expect(warnings.contains { $0.contains("unrecorded.qevm") }, "\(warnings)")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
    }

    /// Quotas: guests, their memory and snapshot bytes, refused up front with what is over.
    @Test func quotasAreEnforcedAndShown() throws {
        let panel = try PanelFixture(machines: VirtMachineTypes.registry) { configuration in
            configuration.settings.limits = .init(maxGuests: 2, maxTotalMemoryMiB: 160, maxSnapshotBytes: 1 << 20)
        }
        let limits = try #require(try panel.get("/api/v1/host").json()["limits"] as? [String: Any])
        #expect(limits["maxGuests"] as? Int == 2)
        #expect((limits["memoryMiB"] as? [String: Any])?["max"] as? Int == VirtMachine.maximumMemoryMiB)
        let first = try create(panel, ["name": "a", "image": "uart-echo", "machineType": "virt", "memoryMiB": 128])
        #expect(first.status == 201)
        #expect(
            try create(panel, ["name": "b", "image": "uart-echo", "machineType": "virt", "memoryMiB": 64]).errorCode == "quota_exceeded",
            "160 MiB in all")
        #expect(try create(panel, ["name": "b", "image": "uart-echo", "machineType": "virt", "memoryMiB": 32]).status == 201)
        #expect(
            try create(panel, ["name": "c", "image": "uart-echo", "machineType": "virt", "memoryMiB": 16]).errorCode == "quota_exceeded",
            "two guests at most")
        let id = try #require(try first.json()["id"] as? String)
        #expect(try panel.send("PATCH", "/api/v1/guests/\(id)", json: ["memoryMiB": 129]).errorCode == "quota_exceeded")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/start").status == 200)
        let snapshot = try panel.send("POST", "/api/v1/guests/\(id)/snapshots", json: ["name": "s"])
        #expect(snapshot.status == 507 && snapshot.errorCode == "insufficient_storage", "\(snapshot.text)")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
    }

    /// A full disk: every change answers 507 and the records say what really is — a pause that
    /// could not be recorded did not happen, a guest that could not be created does not exist.
    @Test(.enabled(if: TinyDisk.canMount, "mounting a tmpfs needs root"))
    func fullDiskAnswers507AndChangesNothing() throws {
        let disk = try TinyDisk(megabytes: 4)
        try withExtendedLifetime(disk) {
            let panel = try panel(dataDir: disk.path + "/data")
            let id = try startEcho(panel, name: "full")
            let filler = disk.fill()
            let pause = try panel.send("POST", "/api/v1/guests/\(id)/pause")
            #expect(pause.status == 507 && pause.errorCode == "insufficient_storage", "\(pause.text)")
            #expect(try state(panel, id) == "running")
            let before = try panel.get("/api/v1/guests/\(id)/console?since=0").json()["next"] as? Int ?? 0
            #expect(try panel.send("POST", "/api/v1/guests/\(id)/console", json: ["data": "r"]).status == 204)
            _ = try waitForConsole(panel, id, "r", since: before)
            #expect(try create(panel, ["name": "more", "image": "uart-echo", "machineType": "virt", "memoryMiB": 64]).status == 507)
            #expect((try panel.get("/api/v1/guests").json()["items"] as? [Any])?.count == 1)
            #expect(try panel.send("POST", "/api/v1/guests/\(id)/snapshots", json: ["name": "s"]).status == 507)
            try FileManager.default.removeItem(atPath: filler)
            #expect(try panel.send("POST", "/api/v1/guests/\(id)/pause").status == 200, "with room again, it pauses")
            #expect(try panel.send("POST", "/api/v1/guests/\(id)/resume").status == 200)
            #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
        }
    }

    /// The panel killed after a snapshot was recorded but before its task was: the next start
    /// finds the task interrupted and the snapshot there, and says the work was done.
    @Test func snapshotTaskCutShortAfterItsRecordIsSettled() throws {
        let dataDir = NSTemporaryDirectory() + "emupanel-settled-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        var id = ""
        var taskID = ""
        do {
            let panel = try panel(dataDir: dataDir)
            id = try startEcho(panel, name: "settled")
            let started = try panel.send("POST", "/api/v1/guests/\(id)/snapshots", json: ["name": "kept"])
            taskID = try #require((try started.json()["task"] as? [String: Any])?["id"] as? String)
            #expect(try waitForTask(panel, started)["status"] as? String == "succeeded")
            // What a kill between the snapshot's record and the task's last write leaves.
            let task = taskID
            _ = try panel.app.services.database.write { db in
                try db.execute(sql: "UPDATE task SET status = 'running', error = NULL WHERE id = ?", arguments: [task])
            }
        }
        let panel = try panel(dataDir: dataDir)
        let task = try panel.get("/api/v1/tasks/\(taskID)").json()
        #expect(task["status"] as? String == "succeeded", "\(task)")
        #expect(try hostWarnings(panel).contains { $0.contains(taskID) })
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
    }

    /// READY is said before the stream only to a source whose offer asks for it (its ticket says
    /// so); an older source's offer gets neither, since it would take the line for the verdict.
    @Test func readyIsSaidOnlyToSourcesThatAskForIt() throws {
        let panel = try panel()
        let type = try VirtMachineTypes.registry.resolve("virt")
        for asks in [true, false] {
            var offer: [String: Any] = [
                "guest": ["name": "arriving-\(asks)", "image": "uart-echo", "memoryMiB": 64, "icount": false],
                "machineType": type.name, "release": Release.current, "vmstate": type.vmstateDump(),
            ]
            if asks { offer["streamWhenReady"] = true }
            let reply = try panel.send("POST", "/api/v1/migrations/incoming", json: offer)
            #expect(reply.status == 201, "\(reply.text)")
            let ticketReply = try reply.json()
            #expect(ticketReply["streamWhenReady"] as? Bool == (asks ? true : nil), "\(reply.text)")
            let port = try #require(ticketReply["port"] as? Int)
            let ticket = try #require(ticketReply["ticket"] as? String)
            let source = try TCPSocket.connect(host: "127.0.0.1", port: UInt16(port), timeout: 5)
            try source.write(line: "EMUPANEL-MIGRATE 1 \(ticket)")
            if asks {
                source.setTimeouts(10)
                #expect(try source.readLine() == "READY")
            } else {
                #expect(!source.waitForInput(until: Date().addingTimeInterval(1)), "nothing before the stream")
            }
            source.shutdown()
        }
    }

    /// A connection to an incoming migration's port without its ticket is refused, and the port
    /// keeps listening: the real source still gets in.
    @Test func strayConnectionDoesNotLockTheIncomingPortAgainstTheSource() throws {
        let panel = try panel()
        let type = try VirtMachineTypes.registry.resolve("virt")
        let reply = try panel.send(
            "POST", "/api/v1/migrations/incoming",
            json: [
                "guest": ["name": "arriving", "image": "uart-echo", "memoryMiB": 64, "icount": false],
                "machineType": type.name, "release": Release.current, "vmstate": type.vmstateDump(),
            ])
        #expect(reply.status == 201, "\(reply.text)")
        let port = try #require(try reply.json()["port"] as? Int)
        let ticket = try #require(try reply.json()["ticket"] as? String)
        let stray = try TCPSocket.connect(host: "127.0.0.1", port: UInt16(port), timeout: 5)
        stray.setTimeouts(5)
        try stray.write(line: "EMUPANEL-MIGRATE 1 guessed")
        #expect(try stray.readLine() == "ERR the migration ticket is not valid")
        let source = try TCPSocket.connect(host: "127.0.0.1", port: UInt16(port), timeout: 5)
        try source.write(line: "EMUPANEL-MIGRATE 1 \(ticket)")
        // Accepted: the destination now waits for the stream (which this test never sends).
        let deadline = Date().addingTimeInterval(10)
        func reserved() throws -> Bool {
            (try panel.get("/api/v1/guests").json()["items"] as? [[String: Any]])?.first?["state"] as? String == "migrating"
        }
        while try !reserved(), Date() < deadline { usleep(10_000) }
        #expect(try reserved())
        source.shutdown()
    }
}
