import Foundation
import HTTPTestSupport
import Testing

/// Live migration of QEMU guests between two panels each running QEMU (issue 12 item 5): the
/// destination's QEMU loads the stream from the ticketed connection, the source's QEMU writes
/// into it; tune and cancel act on QEMU; a destination QEMU's failure reaches the source task.
@Suite("QEMU live migration", .serialized, .enabled(if: QEMUPanel.riscv64, "qemu-system-riscv64 is not installed"))
struct QEMUMigrationTests {
    let helpers = GuestTests()

    func target(_ destination: PanelFixture) -> [String: Any] {
        ["url": "http://127.0.0.1:\(destination.port)", "token": PanelFixture.token]
    }

    func startedPattern(on panel: PanelFixture) throws -> String {
        let id = try QEMUPanel.started(panel, name: "pattern", image: "memory-pattern")
        _ = try helpers.waitForConsole(panel, id, "pass 32 ok")
        return id
    }

    func guests(_ panel: PanelFixture) throws -> [[String: Any]] {
        try panel.get("/api/v1/guests").json()["items"] as? [[String: Any]] ?? []
    }

    @Test func runningGuestMovesAndKeepsItsCheckPassing() throws {
        let destination = try QEMUPanel.panel()
        let source = try QEMUPanel.panel()
        let id = try startedPattern(on: source)

        let preflight = try source.send("POST", "/api/v1/guests/\(id)/migrate/preflight", json: ["target": target(destination)]).json()
        #expect(preflight["go"] as? Bool == true, "\(preflight)")
        let names = (preflight["checks"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(
            names.contains("tier") && names.contains("machine type") && names.filter { $0.hasPrefix("static check QEMU") }.count == 2,
            "the tier rule and QEMU's dumps checked both ways: \(names)")

        let task = try helpers.waitForTask(
            source,
            try source.send(
                "POST", "/api/v1/guests/\(id)/migrate",
                json: ["target": target(destination), "downtimeLimitMs": 300]))
        #expect(task["status"] as? String == "succeeded", "\(task)")
        let detail = try #require(task["detail"] as? [String: Any])
        #expect(detail["status"] as? String == "completed")
        #expect(((detail["ram"] as? [String: Any])?["total"] as? Double ?? 0) > 0, "QEMU's query-migrate figures: \(detail)")
        let moved = try #require(detail["destinationGuestId"] as? String)
        #expect(try source.get("/api/v1/guests/\(id)").json()["state"] as? String == "migrated")
        let there = try destination.get("/api/v1/guests/\(moved)").json()
        #expect(there["state"] as? String == "running" && there["backend"] as? String == "qemu", "\(there)")
        let console = try helpers.waitForConsole(destination, moved, " ok")
        #expect(!console.text.contains("holds"), "the check passes on the destination: \(console.text.suffix(300))")
        #expect(try destination.send("POST", "/api/v1/guests/\(moved)/stop").status == 200)
    }

    @Test func tuneAndCancelActOnQEMUMidFlight() throws {
        let destination = try QEMUPanel.panel()
        let source = try QEMUPanel.panel()
        let id = try startedPattern(on: source)
        // 1 MiB/s: 64 MiB of RAM take a minute.
        let started = try source.send(
            "POST", "/api/v1/guests/\(id)/migrate",
            json: ["target": target(destination), "maxBandwidth": 1 << 20])
        #expect(started.status == 202, "\(started.text)")
        let taskID = try #require((try started.json()["task"] as? [String: Any])?["id"] as? String)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, (try source.get("/api/v1/tasks/\(taskID)").json()["progress"] as? Double ?? 0) <= 0 { usleep(50_000) }
        let tuned = try source.send("PATCH", "/api/v1/tasks/\(taskID)", json: ["maxBandwidth": 2 << 20, "downtimeLimitMs": 500])
        #expect(tuned.status == 200, "\(tuned.text)")
        var applied = false
        while Date() < deadline, !applied {
            let detail = try source.get("/api/v1/tasks/\(taskID)").json()["detail"] as? [String: Any]
            applied = detail?["max-bandwidth"] as? Int == 2 << 20 && detail?["downtime-limit"] as? Int == 500
            if !applied { usleep(50_000) }
        }
        #expect(applied, "the new limits reach QEMU and the task's figures")
        #expect(try source.send("DELETE", "/api/v1/tasks/\(taskID)").status == 202)
        let task = try helpers.waitForTask(source, started)
        #expect(task["status"] as? String == "cancelled", "\(task)")
        #expect(try source.get("/api/v1/guests/\(id)").json()["state"] as? String == "running")
        let console = try helpers.waitForConsole(
            source, id, " ok", since: try source.get("/api/v1/guests/\(id)/console?since=0").json()["next"] as? Int ?? 0)
        #expect(!console.text.contains("holds"))
        try waitForNoGuests(destination)
    }

    /// The destination's QEMU refuses the stream (here a wrapper gives it more RAM than the
    /// source's): QEMU's source sees only a broken pipe, the source task shows the destination
    /// QEMU's own words, and the guest runs on at the source.
    @Test func destinationQEMUsReasonReachesTheSource() throws {
        let wrappers = NSTemporaryDirectory() + "emupanel-qemu-wrapper-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: wrappers) }
        try FileManager.default.createDirectory(atPath: wrappers, withIntermediateDirectories: true)
        let real = try #require(
            (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
                .map { "\($0)/qemu-system-riscv64" }.first { FileManager.default.isExecutableFile(atPath: $0) })
        let wrapper = wrappers + "/qemu-system-riscv64"
        try "#!/bin/sh\nexec \(real) \"$@\" -m 128M\n".write(toFile: wrapper, atomically: true, encoding: .utf8)
        chmod(wrapper, 0o755)
        let destination = try PanelFixture(machines: .empty) { configuration in
            configuration.settings.qemu = .init(
                enabled: true, binaries: ["qemu-system-riscv64"],
                cacheDir: wrappers + "/cache", searchPath: wrappers)
        }
        let source = try QEMUPanel.panel()
        let id = try startedPattern(on: source)
        let task = try helpers.waitForTask(
            source,
            try source.send(
                "POST", "/api/v1/guests/\(id)/migrate",
                json: ["target": target(destination)]))
        #expect(task["status"] as? String == "failed", "\(task)")
        let error = task["error"] as? String ?? ""
        #expect(error.contains("mismatch") || error.contains("ram"), "QEMU's own reason from the destination: \(error)")
        #expect(!error.contains("Broken pipe"), "\(error)")
        #expect(!error.contains("waiting for connection"), "QEMU's informational lines are no reason: \(error)")
        #expect(try source.get("/api/v1/guests/\(id)").json()["state"] as? String == "running")
        let console = try helpers.waitForConsole(
            source, id, " ok", since: try source.get("/api/v1/guests/\(id)/console?since=0").json()["next"] as? Int ?? 0)
        #expect(!console.text.contains("holds"))
        try waitForNoGuests(destination)
    }

    /// The destination drops what did not arrive (its record goes with the failed transfer).
    func waitForNoGuests(_ panel: PanelFixture) throws {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !(try guests(panel)).isEmpty { usleep(50_000) }
        let left = try guests(panel)
        #expect(left.isEmpty, "\(left)")
    }
}
