import Foundation
import HTTPTestSupport
import RISCV
import Synchronization
import Testing

@testable import PanelCore
@testable import PanelHTTP

/// Stopping the panel (SIGTERM) while a task streams a guest: the task is cancelled and ends
/// first, the guest is given back and saved, and the next start resumes it — nothing runs twice,
/// nothing is lost.
@Suite("Shutdown", .serialized)
struct ShutdownTests {
    /// A 64 MiB memory-pattern guest, created and started; its id.
    func startedMemoryPattern(_ name: String, on panel: PanelFixture) throws -> String {
        let created = try panel.send(
            "POST", "/api/v1/guests",
            json: ["name": name, "image": "memory-pattern", "machineType": "virt", "memoryMiB": 64])
        let id = try #require(try created.json()["id"] as? String)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/start").status == 200)
        return id
    }

    @Test func stopDuringAMigrationCancelsItAndSavesTheGuest() throws {
        let sourceDir = NSTemporaryDirectory() + "emupanel-shutdown-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: sourceDir) }
        let destination = try PanelFixture(machines: VirtMachineTypes.registry)
        var id = ""
        do {
            let source = try PanelFixture(machines: VirtMachineTypes.registry) { $0.settings.dataDir = sourceDir }
            id = try startedMemoryPattern("moving", on: source)
            // 1 MiB/s: the 16 MiB working set would take a quarter of a minute.
            let started = try source.send(
                "POST", "/api/v1/guests/\(id)/migrate",
                json: [
                    "target": ["url": "http://127.0.0.1:\(destination.port)", "token": PanelFixture.token],
                    "maxBandwidth": 1 << 20,
                ])
            #expect(started.status == 202, "\(started.text)")
            let taskID = try #require((try started.json()["task"] as? [String: Any])?["id"] as? String)
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline, (try source.get("/api/v1/tasks/\(taskID)").json()["progress"] as? Double ?? 0) <= 0 {
                usleep(50_000)
            }
            let stopping = Date()
            source.app.stop()
            #expect(Date().timeIntervalSince(stopping) < 20, "the transfer was cancelled, not waited out")
            let task = try source.app.tasks.get(taskID)
            #expect(task.status == .cancelled || task.status == .failed, "\(task)")
        }
        // The destination never started a copy; the source brings its guest back.
        #expect((try destination.get("/api/v1/guests").json()["items"] as? [Any])?.isEmpty == true)
        let source = try PanelFixture(machines: VirtMachineTypes.registry) { $0.settings.dataDir = sourceDir }
        #expect(try source.get("/api/v1/guests/\(id)").json()["state"] as? String == "running")
        let deadline = Date().addingTimeInterval(30)
        var console = ""
        while Date() < deadline, !console.contains("pass ") {
            console = try source.get("/api/v1/guests/\(id)/console?since=0&wait=2").json()["data"] as? String ?? ""
        }
        #expect(console.contains("pass ") && !console.contains("holds"), "\(console.suffix(300))")
        #expect(try source.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
    }

    /// A saved state the next start cannot load (damaged here; in real life an unversioned
    /// type after an upgrade): the guest comes back stopped, the file is kept aside, and a
    /// start boots it afresh instead of failing forever.
    @Test func savedStateThatDoesNotLoadIsSetAsideNotRetriedForever() throws {
        let dataDir = NSTemporaryDirectory() + "emupanel-rejected-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        var id = ""
        do {
            let panel = try PanelFixture(machines: VirtMachineTypes.registry) { $0.settings.dataDir = dataDir }
            id = try startedMemoryPattern("saved", on: panel)
        }
        let saved = dataDir + "/guests/\(id)/managed-save.qevm"
        let bytes = try #require(FileManager.default.contents(atPath: saved))
        try bytes.prefix(4096).write(to: URL(fileURLWithPath: saved))

        let panel = try PanelFixture(machines: VirtMachineTypes.registry) { $0.settings.dataDir = dataDir }
        #expect(try panel.get("/api/v1/guests/\(id)").json()["state"] as? String == "stopped")
        #expect(FileManager.default.fileExists(atPath: saved + ".rejected"))
        #expect(!FileManager.default.fileExists(atPath: saved))
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/start").status == 200, "boots afresh")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
    }

    /// A panel that stops while a migration is coming in: the reservation holding the guest's
    /// name goes at the next start (the source still has the guest), so a retry is not refused.
    @Test func unfinishedIncomingMigrationIsForgottenAtTheNextStart() throws {
        let dataDir = NSTemporaryDirectory() + "emupanel-incoming-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        do {
            let panel = try PanelFixture(machines: VirtMachineTypes.registry) { $0.settings.dataDir = dataDir }
            let now = Date()
            try panel.app.services.guests.store.insert(
                GuestRecord(
                    id: "g-arriving", name: "arriving", image: "memory-pattern", machineType: "virt-1.1", memoryMiB: 64,
                    state: .migrating, icount: false, resumeAtStart: false, pausedAtSave: false, currentSnapshot: nil,
                    incoming: true, createdAt: now, updatedAt: now))
        }
        let panel = try PanelFixture(machines: VirtMachineTypes.registry) { $0.settings.dataDir = dataDir }
        #expect(try panel.get("/api/v1/guests/g-arriving").status == 404)
        let retry = try panel.send(
            "POST", "/api/v1/guests",
            json: ["name": "arriving", "image": "memory-pattern", "machineType": "virt", "memoryMiB": 64])
        #expect(retry.status == 201, "\(retry.text)")
    }

    /// Pre-flights to a host that accepts connections and never answers block their threads for
    /// the peer timeout; they must not starve the rest of the panel (long polls answer on time),
    /// and past the cap they are turned away at once.
    @Test func silentPeerDoesNotStarveThePanel() throws {
        let silent = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(silent) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(silent, $0, length) } }
        #expect(listen(silent, 64) == 0)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(silent, $0, &length) } }
        let port = UInt16(bigEndian: address.sin_port)

        let panel = try PanelFixture(machines: VirtMachineTypes.registry)
        let id = try startedMemoryPattern("g", on: panel)
        let url = "http://127.0.0.1:\(port)"
        let statuses = Mutex<[Int]>([])
        for _ in 0..<12 {
            Thread {
                let body: [String: Any] = ["target": ["url": url, "token": "x"]]
                let status = (try? panel.send("POST", "/api/v1/guests/\(id)/migrate/preflight", json: body).status) ?? 0
                statuses.withLock { $0.append(status) }
            }.start()
        }
        // The cap's worth hang on the silent host; the rest were turned away.
        let deadline = Date().addingTimeInterval(10)
        while panel.app.peerCalls.inFlight < MigrationController.maximumPeerCalls
            || statuses.withLock({ $0.count }) < 12 - MigrationController.maximumPeerCalls,
            Date() < deadline
        { usleep(1000) }
        // Nothing happens meanwhile, so this long poll ends on its 1 s timer — which needs a thread.
        let newest = try #require(try panel.get("/api/v1/events?since=0&wait=0").json()["next"] as? Int)
        let start = Date()
        #expect(try panel.get("/api/v1/events?since=\(newest)&wait=1").status == 200)
        let waited = Date().timeIntervalSince(start)
        #expect(waited > 0.9 && waited < 3, "a long poll answers on time while pre-flights hang (\(waited) s)")
        #expect(
            statuses.withLock { $0.filter { $0 == 503 }.count } == 12 - MigrationController.maximumPeerCalls,
            "the calls past the cap were turned away at once")
    }

    /// Incoming migrations hold a port and a thread each: one per guest name and a few in all;
    /// an offer with a name the API would refuse is refused too.
    @Test func incomingMigrationsAreCappedAndNamesChecked() throws {
        let panel = try PanelFixture(machines: VirtMachineTypes.registry)
        let type = try VirtMachineTypes.registry.resolve("virt")
        func offer(_ name: String, memoryMiB: Int = 64) throws -> RawHTTPConnection.Reply {
            try panel.send(
                "POST", "/api/v1/migrations/incoming",
                json: [
                    "guest": ["name": name, "image": "memory-pattern", "memoryMiB": memoryMiB, "icount": false],
                    "machineType": type.name, "release": Release.current, "vmstate": type.vmstateDump(),
                ])
        }
        #expect(try offer("bad name!").status == 422)
        #expect(try offer("tiny", memoryMiB: 1).status == 422)
        #expect(try offer("first").status == 201)
        #expect(try offer("first").errorCode == "migration_in_progress")
        for name in ["second", "third", "fourth"] { #expect(try offer(name).status == 201) }
        #expect(try offer("fifth").status == 503, "at most \(IncomingMigrations.maximumIncoming) at once")
    }
}
