import Foundation
import HTTPTestSupport
import Testing

/// Live migration between two real `emupanel serve` processes on loopback.
@Suite("Live migration", .serialized)
struct MigrationTests {
    /// A migration held to 2 MiB/s, so there is time to act on it; returns its task once RAM is moving.
    func startSlowMigration(of id: String, from a: ServeProcess, to b: ServeProcess) throws -> String {
        let started = try a.send(
            "POST", "/guests/\(id)/migrate",
            [
                "target": ["url": "http://127.0.0.1:\(b.port)", "token": b.token], "maxBandwidth": 2 << 20,
            ])
        let taskID = try #require((try started.json()["task"] as? [String: Any])?["id"] as? String)
        #expect(
            try eventually(within: 30) {
                let task = try a.get("/tasks/\(taskID)")
                // Not "not running": a task still queued has not started either.
                return (task["progress"] as? Double ?? 0) > 0 || ["succeeded", "failed", "cancelled"].contains(task["status"] as? String ?? "")
            }, "the transfer started")
        return taskID
    }

    /// The memory-pattern guest still runs on `host` and its check still passes: a pass that
    /// ends " ok" is printed after this call.
    func expectStillChecking(_ id: String, on host: ServeProcess) throws {
        var next = try host.console(id, wait: 0).next
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while !text.contains(" ok"), Date() < deadline {
            let chunk = try host.console(id, since: next, wait: 3)
            text += chunk.text
            next = chunk.next
        }
        #expect(text.contains(" ok"), "\(text.suffix(300))")
        #expect(!text.lowercased().contains("fail"), "\(text.suffix(300))")
    }

    func startMemoryPattern(on host: ServeProcess, name: String = "mp", memoryMiB: Int = 256, backend: String = "builtin") throws -> String {
        let created = try host.send(
            "POST", "/guests", ["name": name, "image": "memory-pattern", "machineType": "virt", "memoryMiB": memoryMiB, "backend": backend])
        let id = try #require(try created.json()["id"] as? String, "\(created.text)")
        #expect(try host.send("POST", "/guests/\(id)/start").status == 200)
        // Let it run some passes so RAM is dirty.
        var text = ""
        var next = 0
        let deadline = Date().addingTimeInterval(30)
        while !text.contains("pass 32 ok"), Date() < deadline {
            let chunk = try host.console(id, since: next)
            text += chunk.text
            next = chunk.next
        }
        return id
    }

    /// Issue 15 item 8: under a bandwidth cap the final throughput once read 20 Gbit/s (bytes over
    /// a near-zero last interval). QEMU's figure at completion is everything over the time after
    /// setup; the limits the transfer ran under come with it.
    @Test func finalFiguresStayUnderTheCapAndNameTheLimits() throws {
        let b = try ServeProcess(name: "dest")
        let a = try ServeProcess(name: "source", peers: [("dest", b.port, b.token)])
        let created = try a.send("POST", "/guests", ["name": "echo", "image": "uart-echo", "machineType": "virt", "memoryMiB": 64])
        let id = try #require(try created.json()["id"] as? String, "\(created.text)")
        #expect(try a.send("POST", "/guests/\(id)/start").status == 200)
        _ = try a.console(id, wait: 3)
        let cap = 4 << 20
        let started = try a.send("POST", "/guests/\(id)/migrate", ["target": ["peer": "dest"], "downtimeLimitMs": 250, "maxBandwidth": cap])
        let taskID = try #require((try started.json()["task"] as? [String: Any])?["id"] as? String, "\(started.text)")
        let task = try a.waitForTask(taskID)
        #expect(task["status"] as? String == "succeeded", "\(task)")
        let detail = try #require(task["detail"] as? [String: Any])
        let mbps = try #require((detail["ram"] as? [String: Any])?["mbps"] as? Double)
        #expect(mbps > 0 && mbps <= Double(cap) * 8 / 1e6 * 1.1, "\(mbps) Mbit/s under a cap of \(Double(cap) * 8 / 1e6): \(detail)")
        #expect(detail["downtime-limit"] as? Int == 250)
        #expect(detail["max-bandwidth"] as? Int == cap)
    }

    @Test func runningGuestMovesAndKeepsItsInvariant() throws {
        let b = try ServeProcess(name: "dest")
        let a = try ServeProcess(name: "source", peers: [("dest", b.port, b.token)])
        let id = try startMemoryPattern(on: a)

        let preflight = try a.send("POST", "/guests/\(id)/migrate/preflight", ["target": ["peer": "dest"]])
        #expect(try preflight.json()["go"] as? Bool == true, "\(preflight.text)")

        let started = try a.send("POST", "/guests/\(id)/migrate", ["target": ["peer": "dest"], "downtimeLimitMs": 300])
        #expect(started.status == 202, "\(started.text)")
        let taskID = try #require((try started.json()["task"] as? [String: Any])?["id"] as? String)
        let task = try a.waitForTask(taskID)
        #expect(task["status"] as? String == "succeeded", "\(task)")
        let detail = try #require(task["detail"] as? [String: Any])
        #expect(detail["status"] as? String == "completed")
        #expect((detail["ram"] as? [String: Any])?["total"] as? Int == 256 << 20)
        #expect(detail["downtime"] != nil)

        #expect(try a.get("/guests/\(id)")["state"] as? String == "migrated", "the source never runs it again")
        let there = try #require((try b.get("/guests")["items"] as? [[String: Any]])?.first)
        #expect(there["state"] as? String == "running")
        #expect(there["machineType"] as? String == "virt-1.2", "the canonical type the alias resolved to at creation")
        let remoteID = try #require(there["id"] as? String)
        // The pattern checker keeps passing on the destination: its output continues, with no failure.
        var text = ""
        var next = 0
        let deadline = Date().addingTimeInterval(30)
        while text.components(separatedBy: " ok").count < 4, Date() < deadline {
            let chunk = try b.console(remoteID, since: next)
            text += chunk.text
            next = chunk.next
        }
        #expect(text.contains(" ok"), "output continues on the destination: \(text.suffix(200))")
        #expect(!text.lowercased().contains("fail"), "\(text)")
    }

    @Test func cancelledMigrationLeavesTheSourceRunning() throws {
        let b = try ServeProcess(name: "dest")
        let a = try ServeProcess(name: "source")
        let id = try startMemoryPattern(on: a)
        let taskID = try startSlowMigration(of: id, from: a, to: b)
        // Mid-flight changes are accepted, then the cancel.
        #expect(try a.send("PATCH", "/tasks/\(taskID)", ["downtimeLimitMs": 100, "maxBandwidth": 1 << 20]).status == 200)
        #expect(try a.send("DELETE", "/tasks/\(taskID)").status == 202)
        let task = try a.waitForTask(taskID)
        #expect(task["status"] as? String == "cancelled", "\(task)")
        #expect(try a.get("/guests/\(id)")["state"] as? String == "running")
        #expect(try eventually { (try b.get("/guests")["items"] as? [Any])?.isEmpty == true }, "the destination discarded everything")
        // Still alive on the source.
        try expectStillChecking(id, on: a)
    }

    @Test func destinationKilledMidStreamLeavesTheSourceRunning() throws {
        let b = try ServeProcess(name: "dest")
        let a = try ServeProcess(name: "source")
        let id = try startMemoryPattern(on: a)
        let taskID = try startSlowMigration(of: id, from: a, to: b)
        b.kill()
        let task = try a.waitForTask(taskID)
        #expect(task["status"] as? String == "failed", "\(task)")
        #expect((task["error"] as? String)?.contains("destination") == true, "\(task)")
        #expect(try a.get("/guests/\(id)")["state"] as? String == "running")
        try expectStillChecking(id, on: a)
    }

    @Test func destinationRefusesAnIncompatibleMachineBeforeAnyRAMMoves() throws {
        let b = try ServeProcess(name: "dest")
        let dump = try #require(try b.send("GET", "/machine-types/virt-1.0/vmstate").text.data(using: .utf8))
        // A source from a newer release whose serial device is at version 9.
        let original = String(decoding: dump, as: UTF8.self)
        var text = original
        text = text.replacingOccurrences(
            of: #""name": "serial",\s*"version_id": 1"#, with: #""name": "serial", "version_id": 9"#,
            options: .regularExpression
        )
        .replacingOccurrences(
            of: #""Name": "ns16550a",\s*"version_id": 1"#, with: #""Name": "ns16550a", "version_id": 9"#,
            options: .regularExpression)
        let offer: [String: Any] = [
            "guest": ["name": "x", "image": "memory-pattern", "memoryMiB": 64, "icount": false],
            "machineType": "virt-1.0", "release": "9.9", "vmstate": text,
        ]
        let verdict = try b.send("POST", "/migrations/incoming/preflight", offer).json()
        let unknownType = try b.send(
            "POST", "/migrations/incoming/preflight",
            offer.merging(["machineType": "virt-9.9", "vmstate": String(decoding: dump, as: UTF8.self)]) { $1 }
        ).json()
        #expect(unknownType["go"] as? Bool == false)
        #expect((unknownType["reasons"] as? [String])?.first?.contains("virt-9.9") == true, "\(unknownType)")
        let refused = try b.send("POST", "/migrations/incoming", offer.merging(["machineType": "virt-9.9"]) { $1 })
        #expect(refused.status == 422)
        #expect(refused.errorCode == "migration_refused")
        #expect(text != original, "the dump names the serial device as QEMU does")
        #expect(verdict["go"] as? Bool == false, "a newer device version is refused: \(verdict)")
        #expect((verdict["reasons"] as? [String])?.contains { $0.contains("serial") || $0.contains("ns16550a") } == true, "\(verdict)")
    }

    /// SPEC §3 determinism across hosts: a guest moved mid-run in icount mode ends with the same
    /// checksums and the same instruction count as a run that never moved.
    @Test func icountBenchmarkMovesWithoutChangingItsResult() throws {
        let straight = Process()
        straight.executableURL = URL(fileURLWithPath: ServeProcess.binary)
        straight.arguments = [
            "run", "--machine", "virt", "--bios", "none", "--icount", "--stats",
            "--kernel", ServeProcess.root.appendingPathComponent("guests/bench.elf").path,
        ]
        let out = Pipe()
        let err = Pipe()
        straight.standardOutput = out
        straight.standardError = err
        straight.standardInput = FileHandle.nullDevice
        try straight.run()
        let expectedOutput = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stats = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        straight.waitUntilExit()
        let expectedInstructions = try #require(Int(stats.split(separator: " ").dropFirst().first ?? ""), "\(stats)")
        let checksum = try #require(expectedOutput.split(whereSeparator: \.isNewline).first { $0.hasPrefix("checksum:") })

        let b = try ServeProcess(name: "dest")
        let a = try ServeProcess(name: "source", peers: [("dest", b.port, b.token)])
        let created = try a.send(
            "POST", "/guests",
            [
                "name": "bench", "image": "benchmark", "machineType": "virt",
                "memoryMiB": 64, "icount": true,
            ])
        let id = try #require(try created.json()["id"] as? String, "\(created.text)")
        // Start and park it at once, so the move surely happens mid-run (the full benchmark: with
        // the JIT the short one prints its first line before the pause lands).
        #expect(try a.send("POST", "/guests/\(id)/start").status == 200)
        #expect(try a.send("POST", "/guests/\(id)/pause").status == 200)
        let started = try a.send("POST", "/guests/\(id)/migrate", ["target": ["peer": "dest"]])
        let taskID = try #require((try started.json()["task"] as? [String: Any])?["id"] as? String, "\(started.text)")
        #expect(try a.waitForTask(taskID)["status"] as? String == "succeeded")

        let deadline = Date().addingTimeInterval(60)
        var exit: [String: Any]?
        while exit == nil, Date() < deadline {
            let events = try b.get("/events?since=0")["items"] as? [[String: Any]] ?? []
            exit = events.first {
                ($0["type"] as? String) == "guest.state" && (($0["data"] as? [String: Any])?["reason"] as? String) == "powered off"
            }
            if exit == nil { usleep(100_000) }
        }
        let data = try #require(exit?["data"] as? [String: Any], "the moved guest powers off on the destination")
        #expect(data["instructions"] as? Int == expectedInstructions)
        let remoteID = try #require(data["id"] as? String)
        let text = try b.console(remoteID, wait: 0).text
        #expect(text.contains(String(checksum)), "\(text) vs \(expectedOutput)")
        #expect(text.contains("crc32:"))
    }
}
