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

    /// GO and STARTED both lost: the source asks the destination, which discarded the guest (it
    /// never got GO), so the guest runs on at the source by itself.
    @Test func lostHandOverIsSettledByAskingTheDestination() throws {
        let b = try ServeProcess(name: "dest")
        let relay = try HandOverRelay(destinationPort: b.port, behaviour: .swallowGO)
        let a = try ServeProcess(name: "source")
        let id = try startMemoryPattern(on: a, memoryMiB: 64)
        // A generous downtime limit switches over after the first pass: this test is about the
        // hand-over, and a relay on a loaded host would make a hot guest's pre-copy crawl.
        let started = try a.send("POST", "/guests/\(id)/migrate", ["target": ["url": relay.url, "token": b.token], "downtimeLimitMs": 60_000])
        let taskID = try #require((try started.json()["task"] as? [String: Any])?["id"] as? String, "\(started.text)")
        let task = try a.waitForTask(taskID)
        #expect(relay.swallowedGO, "the source sent GO after the destination's OK: \(task)")
        #expect(task["status"] as? String == "failed", "never succeeded without STARTED: \(task)")
        #expect((task["error"] as? String)?.contains("runs on here") == true, "\(task)")
        #expect(try a.get("/guests/\(id)")["state"] as? String == "running")
        #expect(try eventually { try guests(on: b).isEmpty }, "the destination dropped its reservation without GO")
        try expectStillChecking(id, on: a)
        #expect(try a.send("POST", "/guests/\(id)/stop").status == 200)
    }

    /// GO and STARTED lost and the destination out of reach: the guest stays parked at the source
    /// as `handoverUnknown` — no plain resume — until a person confirms where it runs.
    @Test func unknownHandOverWaitsForAResolution() throws {
        let b = try ServeProcess(name: "dest")
        let a = try ServeProcess(name: "source")
        let id = try startMemoryPattern(on: a, memoryMiB: 64)
        var taskID = ""
        do {
            let pid = b.process.processIdentifier
            let relay = try HandOverRelay(destinationPort: b.port, behaviour: .atGO({ kill(pid, SIGKILL) }))
            let started = try a.send("POST", "/guests/\(id)/migrate", ["target": ["url": relay.url, "token": b.token], "downtimeLimitMs": 60_000])
            taskID = try #require((try started.json()["task"] as? [String: Any])?["id"] as? String, "\(started.text)")
            let task = try a.waitForTask(taskID)
            #expect(task["status"] as? String == "failed", "\(task)")
            #expect((task["error"] as? String)?.contains("handoverUnknown") == true, "\(task)")
        }
        let guest = try a.get("/guests/\(id)")
        #expect(guest["state"] as? String == "handoverUnknown")
        #expect(guest["peer"] as? String != nil, "it names where it may run")
        #expect(try a.send("POST", "/guests/\(id)/resume").errorCode == "handover_unknown")
        #expect(try a.send("POST", "/guests/\(id)/start").errorCode == "handover_unknown")
        #expect(try a.send("POST", "/guests/\(id)/resolve", [:]).errorCode == "handover_unknown", "nobody answers to settle it")
        let settled = try a.send("POST", "/guests/\(id)/resolve", ["runsOn": "here"])
        #expect(try settled.status == 200 && settled.json()["state"] as? String == "paused", "\(settled.text)")
        #expect(try a.send("POST", "/guests/\(id)/resume").status == 200)
        try expectStillChecking(id, on: a)
        #expect(try a.send("POST", "/guests/\(id)/stop").status == 200)
    }

    /// The source killed just after its GO left: it comes back with the guest `handoverUnknown`
    /// (recorded before GO), never startable by itself, and settles it by asking the destination,
    /// which runs the guest.
    @Test func sourceKilledAfterGOSettlesAtItsNextStart() throws {
        let b = try ServeProcess(name: "dest")
        let a = try ServeProcess(name: "source")
        defer { withExtendedLifetime(a) {} }
        let id = try startMemoryPattern(on: a, memoryMiB: 64)
        let pid = a.process.processIdentifier
        let relay = try HandOverRelay(destinationPort: b.port, behaviour: .atGO({ kill(pid, SIGKILL) }))
        defer { withExtendedLifetime(relay) {} }
        _ = try a.send("POST", "/guests/\(id)/migrate", ["target": ["url": relay.url, "token": b.token], "downtimeLimitMs": 60_000])
        #expect(try eventually(within: 60) { try guests(on: b).first?["state"] as? String == "running" }, "the destination got GO and runs it")
        let restarted = try ServeProcess(name: "source", reusing: a)
        let settled = try eventually(within: 30) { try restarted.get("/guests/\(id)")["state"] as? String == "migrated" }
        #expect(settled, "settled by asking the destination")
        #expect(try restarted.send("POST", "/guests/\(id)/start").status == 409, "never started twice")
    }

    /// The destination told to stop (SIGTERM) just after its OK: it finishes the hand-over before it
    /// stops, saves the guest that arrived, and resumes it at its next start; the source let go of
    /// it only on STARTED. Nothing is lost.
    @Test func destinationStoppedAfterOKStillTakesAndSavesTheGuest() throws {
        let b = try ServeProcess(name: "dest")
        defer { withExtendedLifetime(b) {} }
        let a = try ServeProcess(name: "source")
        let id = try startMemoryPattern(on: a, memoryMiB: 64)
        let pid = b.process.processIdentifier
        let relay = try HandOverRelay(destinationPort: b.port, behaviour: .atOK({ kill(pid, SIGTERM) }))
        defer { withExtendedLifetime(relay) {} }
        let started = try a.send("POST", "/guests/\(id)/migrate", ["target": ["url": relay.url, "token": b.token], "downtimeLimitMs": 60_000])
        let taskID = try #require((try started.json()["task"] as? [String: Any])?["id"] as? String, "\(started.text)")
        let task = try a.waitForTask(taskID)
        #expect(task["status"] as? String == "succeeded", "\(task)")
        #expect(try a.get("/guests/\(id)")["state"] as? String == "migrated")
        b.process.waitUntilExit()
        #expect(b.process.terminationReason == .exit && b.process.terminationStatus == 0)
        let restarted = try ServeProcess(name: "dest", reusing: b)
        let arrived = try #require(try guests(on: restarted).first?["id"] as? String)
        #expect(try restarted.get("/guests/\(arrived)")["state"] as? String == "running", "saved at the stop and resumed")
        try expectStillChecking(arrived, on: restarted)
    }

    /// A 64 MiB memory-pattern guest on a fresh source, migrated to a fresh destination through a
    /// relay that does `behaviour` at the hand-over: both hosts, the guest, and the finished task.
    func migrateThroughRelay(
        _ behaviour: HandOverRelay.Behaviour, downtimeLimitMs: Int
    ) throws -> (source: ServeProcess, destination: ServeProcess, id: String, task: [String: Any]) {
        let b = try ServeProcess(name: "dest")
        let relay = try HandOverRelay(destinationPort: b.port, behaviour: behaviour)
        let a = try ServeProcess(name: "source")
        let id = try startMemoryPattern(on: a, memoryMiB: 64)
        let started = try a.send(
            "POST", "/guests/\(id)/migrate", ["target": ["url": relay.url, "token": b.token], "downtimeLimitMs": downtimeLimitMs])
        let taskID = try #require((try started.json()["task"] as? [String: Any])?["id"] as? String, "\(started.text)")
        return (a, b, id, try withExtendedLifetime(relay) { try a.waitForTask(taskID, timeout: 60) })
    }

    /// A destination that falls silent with the guest parked for the switch-over (its OK never
    /// comes): the source gives up after the downtime limit plus the grace and runs on.
    @Test func silentDestinationHoldsTheGuestOnlyForTheLimitPlusGrace() throws {
        let (a, _, id, task) = try migrateThroughRelay(.holdOK, downtimeLimitMs: 500)
        #expect(task["status"] as? String == "failed", "\(task)")
        #expect((task["error"] as? String)?.contains("downtime limit") == true, "\(task)")
        #expect(try a.get("/guests/\(id)")["state"] as? String == "running")
        try expectStillChecking(id, on: a)
        #expect(try a.send("POST", "/guests/\(id)/stop").status == 200)
    }

    /// A destination that is slow to load but says so (WAIT) keeps the migration past the limit
    /// plus the grace: only silence gives it up.
    @Test func slowButAliveDestinationKeepsTheMigration() throws {
        let (a, _, id, task) = try migrateThroughRelay(.delayOK(seconds: 3.5), downtimeLimitMs: 300)
        #expect(task["status"] as? String == "succeeded", "\(task)")
        #expect(try a.get("/guests/\(id)")["state"] as? String == "migrated")
    }

    /// The source streams only after the destination's READY, waiting through its WAITs (a QEMU
    /// that takes its time to start), and the migration completes.
    @Test func theSourceWaitsForTheDestinationsReady() throws {
        let (_, b, _, task) = try migrateThroughRelay(.delayReady(seconds: 1.5), downtimeLimitMs: 300)
        #expect(task["status"] as? String == "succeeded", "\(task)")
        let arrived = try #require(try guests(on: b).first?["id"] as? String)
        try expectStillChecking(arrived, on: b)
    }

    /// A destination whose machine fails before it reads says ERR instead of READY: the source's
    /// task fails with those words (not a broken stream) and the guest runs on there.
    @Test func anErrInsteadOfReadyEndsTheMigrationWithTheDestinationsReason() throws {
        let (a, _, id, task) = try migrateThroughRelay(.refuseAtReady("QEMU would not start: no KVM"), downtimeLimitMs: 300)
        #expect(task["status"] as? String == "failed", "\(task)")
        #expect(task["error"] as? String == "destination: QEMU would not start: no KVM", "\(task)")
        #expect(try a.get("/guests/\(id)")["state"] as? String == "running")
        try expectStillChecking(id, on: a)
        #expect(try a.send("POST", "/guests/\(id)/stop").status == 200)
    }

    /// A destination stopped dead (SIGSTOP) mid-stream blocks the source's writes: a cancel still
    /// ends the migration within a second, and the guest runs on.
    @Test func cancelActsAtOnceOnAHungDestination() throws {
        let b = try ServeProcess(name: "dest")
        let a = try ServeProcess(name: "source")
        let id = try startMemoryPattern(on: a, memoryMiB: 256)
        let taskID = try startSlowMigration(of: id, from: a, to: b)
        kill(b.process.processIdentifier, SIGSTOP)
        defer { kill(b.process.processIdentifier, SIGCONT) }
        // Let the source's writes fill the socket and block.
        _ = try eventually(within: 3) { false }
        let cancelled = Date()
        #expect(try a.send("DELETE", "/tasks/\(taskID)").status == 202)
        let ended = try eventually(within: 1.5) { try a.get("/tasks/\(taskID)")["status"] as? String == "cancelled" }
        let task = try a.get("/tasks/\(taskID)")
        #expect(ended, "cancelled within a second (\(Date().timeIntervalSince(cancelled)) s): \(task)")
        #expect(try eventually { try a.get("/guests/\(id)")["state"] as? String == "running" })
        try expectStillChecking(id, on: a)
        #expect(try a.send("POST", "/guests/\(id)/stop").status == 200)
    }

    @Test func destinationHoldsTheNameWhileAGuestMovesIn() throws {
        let b = try ServeProcess(name: "dest")
        let a = try ServeProcess(name: "source")
        let id = try startMemoryPattern(on: a, memoryMiB: 64)
        let started = try a.send(
            "POST", "/guests/\(id)/migrate",
            [
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
        let started = try a.send(
            "POST", "/guests/\(id)/migrate",
            [
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
