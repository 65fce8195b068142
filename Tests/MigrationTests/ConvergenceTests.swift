import Foundation
import HTTPTestSupport
import Testing

/// Issue 11's convergence on the 16 MiB hot guest (it rewrites one byte of every page of its
/// region over and over, so all of it is dirty again after every pass): a snapshot and a live
/// migration both complete, switched over by the pre-copy's own test — the expected pause fitted
/// the limit, not the pass cap — and the guest's check goes on passing. The 512 MiB variant, too
/// slow for a test, is bench/snapshot.sh's and bench/migrate.sh's hot512 workload.
extension MigrationTests {
    /// The pause actually measured is the expected one plus whatever the scheduler adds on this
    /// shared 2-core machine (other builds and tests run beside these): that allowance, not the
    /// algorithm, is what this margin is for.
    static let schedulingAllowanceMs = 250

    /// Starts a task with `method path body` on `host` and waits for its end.
    func runTask(on host: ServeProcess, _ method: String, _ path: String, _ body: [String: Any]? = nil) throws -> [String: Any] {
        let started = try host.send(method, path, body)
        let id = try #require((try started.json()["task"] as? [String: Any])?["id"] as? String, "\(started.text)")
        return try host.waitForTask(id, timeout: 60)
    }

    @Test func hotGuestSnapshotConvergesWithinItsPauseTarget() throws {
        let a = try ServeProcess(name: "source")
        let id = try startMemoryPattern(on: a, memoryMiB: 64)
        let task = try runTask(on: a, "POST", "/guests/\(id)/snapshots", ["name": "hot"])
        #expect(task["status"] as? String == "succeeded", "\(task)")
        let detail = try #require(task["detail"] as? [String: Any])
        let transfer = try #require(detail["transfer"] as? [String: Any], "\(detail)")
        // A snapshot's pause target is 50 ms (SnapshotService).
        let expected = try #require(transfer["expected-downtime"] as? Int, "\(transfer)")
        #expect(expected <= 50, "switched over by the test, not the pass cap: \(transfer)")
        let pause = try #require(detail["pauseMs"] as? Int)
        #expect(pause <= 50 + Self.schedulingAllowanceMs, "\(detail)")
        #expect(try a.get("/guests/\(id)")["state"] as? String == "running")
        try expectStillChecking(id, on: a)
        // The file's checksum is what reached the file, though the guest rewrote its pages while
        // they went out: the restore checks it.
        let restored = try runTask(on: a, "POST", "/guests/\(id)/snapshots/hot/restore")
        #expect(restored["status"] as? String == "succeeded", "\(restored)")
        try expectStillChecking(id, on: a)
        #expect(try a.send("POST", "/guests/\(id)/stop").status == 200)
    }

    /// A downtime limit of 5 ms is less than the link needs for the 16 MiB the guest dirties in a
    /// pass: only auto-converge's throttle brings the pass under it.
    @Test func hotGuestMigrationConvergesThroughAutoConverge() throws {
        let b = try ServeProcess(name: "dest")
        let a = try ServeProcess(name: "source")
        let id = try startMemoryPattern(on: a, memoryMiB: 64)
        let limit = 5
        let task = try runTask(
            on: a, "POST", "/guests/\(id)/migrate",
            [
                "target": ["url": "http://127.0.0.1:\(b.port)", "token": b.token], "downtimeLimitMs": limit,
            ])
        #expect(task["status"] as? String == "succeeded", "\(task)")
        let detail = try #require(task["detail"] as? [String: Any])
        let throttle = try #require(detail["cpu-throttle-percentage"] as? Double, "\(detail)")
        #expect(throttle > 0, "auto-converge throttled the vCPU: \(detail)")
        let expected = try #require(detail["expected-downtime"] as? Int, "\(detail)")
        #expect(expected <= limit, "switched over by the test, not the pass cap: \(detail)")
        let downtime = try #require(detail["downtime"] as? Int)
        #expect(downtime <= limit + Self.schedulingAllowanceMs, "\(detail)")
        let arrived = try #require(detail["destinationGuestId"] as? String)
        try expectStillChecking(arrived, on: b)
        #expect(try b.send("POST", "/guests/\(arrived)/stop").status == 200)
    }
}
