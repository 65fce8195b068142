import Foundation
import HTTPTestSupport
import RISCV
import Synchronization
import Testing

@testable import PanelCore
@testable import PanelHTTP

/// Races between a guest's own end and the panel's lifecycle changes, staged by holding the
/// manager's `lifecycle` lock (hence `@testable`): the interleavings are exact, not timed.
extension GuestTests {
    func startEcho(_ panel: PanelFixture, name: String) throws -> String {
        let created = try create(panel, ["name": name, "image": "uart-echo", "machineType": "virt", "memoryMiB": 64])
        let id = try #require(try created.json()["id"] as? String, "\(created.text)")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/start").status == 200)
        _ = try waitForConsole(panel, id, "'q' quits")
        return id
    }

    func state(_ panel: PanelFixture, _ id: String) throws -> String? {
        try panel.get("/api/v1/guests/\(id)").json()["state"] as? String
    }

    /// A restore swaps in a fresh machine under the guest's lock while the old one powers off: the
    /// old one's exit report, waiting for the lock, comes after the swap and must leave the fresh one be.
    @Test func lateExitOfAReplacedMachineLeavesTheFreshOne() throws {
        let panel = try panel()
        let guests = panel.app.services.guests
        let lifecycle = panel.app.services.lifecycle
        let id = try startEcho(panel, name: "swapped")
        let old = try guests.runtime(id)
        let fresh = try lifecycle.makeRuntime(for: try guests.get(id))
        defer { fresh.stop() }
        let console = try guests.console(id)
        let reportsBefore = lifecycle.exitReports.load(ordering: .acquiring)
        let swapped = try guests.withLifecycle(id) { _ -> Int? in
            _ = old.type(Array("q".utf8))  // the echo guest powers off on 'q'
            let deadline = Date().addingTimeInterval(30)
            while old.isAlive, Date() < deadline { usleep(1000) }
            guard !old.isAlive else { return nil }
            // What a restore does under the lock, while the old machine's exit report waits for it.
            guests.register(fresh, for: id)
            let before = Int(console.total)  // read before it starts, or its banner may come first
            try fresh.start(paused: false)
            return before
        }
        let freshOutput = try #require(swapped, "the old machine powered off")
        // The old machine's exit report runs now that the lock is free.
        let deadline = Date().addingTimeInterval(30)
        while lifecycle.exitReports.load(ordering: .acquiring) == reportsBefore, Date() < deadline { usleep(1000) }
        #expect(lifecycle.exitReports.load(ordering: .acquiring) > reportsBefore, "the old machine's end was reported")
        #expect((try? guests.runtime(id)) === fresh, "the fresh machine stays the guest's")
        #expect(try state(panel, id) == "running")
        // It is the guest's in every way: it answers the console, and a stop ends its CPU thread.
        let ready = try waitForConsole(panel, id, "'q' quits", since: freshOutput)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/console", json: ["data": "x"]).status == 204)
        _ = try waitForConsole(panel, id, "x", since: ready.next)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
        #expect(!fresh.isAlive, "no orphaned CPU thread")
    }

    /// A snapshot resumes only a guest it paused itself: a paused guest stays parked after its
    /// snapshot (typing is not echoed until it is resumed), a running one runs on.
    @Test func snapshotResumesOnlyTheGuestItPaused() throws {
        let panel = try panel()
        let id = try startEcho(panel, name: "parked")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/pause").status == 200)
        let paused = try waitForTask(panel, try panel.send("POST", "/api/v1/guests/\(id)/snapshots", json: ["name": "while-paused"]))
        #expect(paused["status"] as? String == "succeeded", "\(paused)")
        #expect(try state(panel, id) == "paused")
        let before = try panel.get("/api/v1/guests/\(id)/console?since=0").json()["next"] as? Int ?? 0
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/console", json: ["data": "a"]).status == 204)
        let meanwhile = try panel.get("/api/v1/guests/\(id)/console?since=\(before)&wait=1").json()["data"] as? String ?? ""
        #expect(!meanwhile.contains("a"), "a parked CPU echoes nothing: \(meanwhile.debugDescription)")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/resume").status == 200)
        let resumed = try waitForConsole(panel, id, "a", since: before)

        let running = try waitForTask(panel, try panel.send("POST", "/api/v1/guests/\(id)/snapshots", json: ["name": "while-running"]))
        #expect(running["status"] as? String == "succeeded", "\(running)")
        #expect(try state(panel, id) == "running")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/console", json: ["data": "b"]).status == 204)
        _ = try waitForConsole(panel, id, "b", since: resumed.next)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
    }
}

extension GuestTests {
    /// Changes that wait — here on a guest whose lifecycle lock is held, as a long start or stop
    /// holds it — wait on the worker pool, not on the server's two threads: `/health` and other
    /// guests answer at once while two of them are in flight.
    @Test func slowChangesDoNotHoldTheServersThreads() throws {
        let panel = try panel()
        let guests = panel.app.services.guests
        let id = try startEcho(panel, name: "held")
        let other = try startEcho(panel, name: "free")
        let answered = Atomic<Int>(0)
        let release = DispatchSemaphore(value: 0)
        let holding = DispatchSemaphore(value: 0)
        Thread {
            guests.withLifecycle(id) { _ in
                holding.signal()
                release.wait()
            }
        }.start()
        holding.wait()
        for action in ["pause", "reset"] {
            Thread {
                _ = try? panel.send("POST", "/api/v1/guests/\(id)/\(action)")
                answered.add(1, ordering: .releasing)
            }.start()
        }
        // Both are in flight once the pool holds them.
        let deadline = Date().addingTimeInterval(10)
        while panel.app.workers.inFlight < 2, Date() < deadline { usleep(1000) }
        #expect(panel.app.workers.inFlight == 2)
        for _ in 0..<5 {
            let start = ContinuousClock.now
            #expect(try panel.get("/api/v1/health", token: nil).status == 200)
            #expect(ContinuousClock.now - start < .milliseconds(50), "health answers within 50 ms")
        }
        #expect(try panel.send("POST", "/api/v1/guests/\(other)/pause").status == 200, "another guest's change is not held up")
        #expect(answered.load(ordering: .acquiring) == 0, "the held guest's changes are still waiting")
        release.signal()
        while answered.load(ordering: .acquiring) < 2, Date() < deadline.addingTimeInterval(20) { usleep(1000) }
        #expect(answered.load(ordering: .acquiring) == 2)
        #expect(try state(panel, id) == "paused")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
        #expect(try panel.send("POST", "/api/v1/guests/\(other)/stop").status == 200)
    }
}
