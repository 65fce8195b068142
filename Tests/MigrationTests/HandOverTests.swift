import Foundation
import HTTPTestSupport
import Testing

/// The hand-over's edges: the source lets go of a guest only on the destination's STARTED, the
/// destination holds the name from the start of the stream, and a guest that ends mid-flight
/// stays stopped where it was.
extension MigrationTests {
    func guests(on host: ServeProcess) throws -> [[String: Any]] {
        try host.get("/guests")["items"] as? [[String: Any]] ?? []
    }

    /// Polls until `condition` holds or `seconds` pass; returns whether it held.
    func eventually(within seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(50_000)
        }
        return try condition()
    }

    @Test func unconfirmedHandOverLeavesTheGuestPausedOnTheSource() throws {
        let b = try ServeProcess(name: "dest")
        let relay = try GOSwallowingRelay(destinationPort: b.port)
        let a = try ServeProcess(name: "source")
        let id = try startMemoryPattern(on: a, memoryMiB: 64)
        // A generous downtime limit switches over after the first pass: this test is about the
        // hand-over, and a relay on a loaded host would make a hot guest's pre-copy crawl.
        let started = try a.send("POST", "/guests/\(id)/migrate", ["target": ["url": relay.url, "token": b.token], "downtimeLimitMs": 60_000])
        let taskID = try #require((try started.json()["task"] as? [String: Any])?["id"] as? String, "\(started.text)")
        let task = try a.waitForTask(taskID)
        #expect(relay.swallowedGO, "the source sent GO after the destination's OK: \(task)")
        #expect(task["status"] as? String == "failed", "never succeeded without STARTED: \(task)")
        let error = task["error"] as? String ?? ""
        #expect(error.contains("did not confirm") && error.contains("paused here"), "\(error)")
        #expect(try a.get("/guests/\(id)")["state"] as? String == "paused", "kept, parked, on the source")
        #expect(try eventually { try guests(on: b).isEmpty }, "the destination dropped its reservation without GO")
        // The user checked the destination: it is not there, so it resumes here where it stopped.
        #expect(try a.send("POST", "/guests/\(id)/resume").status == 200)
        try expectStillChecking(id, on: a)
        #expect(try a.send("POST", "/guests/\(id)/stop").status == 200)
    }

    @Test func destinationHoldsTheNameWhileAGuestMovesIn() throws {
        let b = try ServeProcess(name: "dest")
        let a = try ServeProcess(name: "source")
        let id = try startMemoryPattern(on: a, memoryMiB: 64)
        let started = try a.send("POST", "/guests/\(id)/migrate", [
            "target": ["url": "http://127.0.0.1:\(b.port)", "token": b.token], "maxBandwidth": 4 << 20,
        ])
        let taskID = try #require((try started.json()["task"] as? [String: Any])?["id"] as? String, "\(started.text)")
        #expect(try eventually { try guests(on: b).first?["state"] as? String == "migrating" }, "the incoming guest is listed, not startable")
        let incoming = try #require(try guests(on: b).first?["id"] as? String)
        #expect(try b.send("POST", "/guests/\(incoming)/start").errorCode == "invalid_state")
        // Someone takes the name on the destination meanwhile: refused, so nothing after OK can fail on it.
        let taken = try b.send("POST", "/guests", ["name": "mp", "image": "memory-pattern", "machineType": "virt", "memoryMiB": 64])
        #expect(taken.status == 409, "\(taken.text)")
        #expect(try a.send("PATCH", "/tasks/\(taskID)", ["maxBandwidth": 0]).status == 200)
        let task = try a.waitForTask(taskID)
        #expect(task["status"] as? String == "succeeded", "\(task)")
        #expect((task["detail"] as? [String: Any])?["destinationGuestId"] as? String == incoming)
        let there = try guests(on: b)
        #expect(there.count == 1)
        #expect(there.first?["name"] as? String == "mp")
        #expect(there.first?["state"] as? String == "running")
        #expect(try a.get("/guests/\(id)")["state"] as? String == "migrated")
    }

    /// The timer guest powers off by itself after 100 ticks (about a second). It does so while its
    /// state streams out — slowly, with a 1 ms downtime limit that keeps the pre-copy going while
    /// it dirties pages —, and the migration is cancelled once its exit is recorded (if it has not
    /// failed already): either way the guest ends stopped and startable, never recorded running
    /// without a machine, and nothing starts on the destination.
    @Test func guestThatPowersOffMidMigrationStaysStopped() throws {
        let b = try ServeProcess(name: "dest")
        let a = try ServeProcess(name: "source")
        let created = try a.send("POST", "/guests", ["name": "timer", "image": "timer", "machineType": "virt", "memoryMiB": 64])
        let id = try #require(try created.json()["id"] as? String, "\(created.text)")
        #expect(try a.send("POST", "/guests/\(id)/start").status == 200)
        let started = try a.send("POST", "/guests/\(id)/migrate", [
            "target": ["url": "http://127.0.0.1:\(b.port)", "token": b.token], "maxBandwidth": 4096, "downtimeLimitMs": 1,
        ])
        let taskID = try #require((try started.json()["task"] as? [String: Any])?["id"] as? String, "\(started.text)")
        #expect(try eventually(within: 30) { try a.get("/guests/\(id)")["state"] as? String == "stopped" }, "its exit is recorded")
        _ = try a.send("DELETE", "/tasks/\(taskID)")
        let task = try a.waitForTask(taskID)
        let stoppedFirst = task["status"] as? String == "failed" && (task["error"] as? String)?.contains("stopped during the migration") == true
        #expect(task["status"] as? String == "cancelled" || stoppedFirst, "\(task)")
        #expect(try a.get("/guests/\(id)")["state"] as? String == "stopped", "not brought back to life in the books")
        #expect(try eventually { try guests(on: b).isEmpty }, "nothing was handed over")
        let before = try a.console(id, wait: 0).next
        #expect(try a.send("POST", "/guests/\(id)/start").status == 200, "a stopped guest starts again")
        #expect(try eventually(within: 30) { try a.get("/guests/\(id)")["state"] as? String == "stopped" })
        #expect(try a.console(id, since: before, wait: 0).text.contains("ticks"))
    }
}
