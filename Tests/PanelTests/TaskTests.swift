import Foundation
import HTTPServer
import HTTPTestSupport
import Migration
import PanelCore
import PanelHTTP
import Synchronization
import Testing

@Suite("Tasks")
struct TaskTests {
    @Test func taskRunsReportsProgressAndIsListed() throws {
        let panel = try PanelFixture()
        let task = try panel.app.tasks.start(kind: "test", guestId: "g1") { handle in
            handle.progress(0.5, detail: ["step": "half"])
            return ["done": true]
        }
        let finished = try panel.app.tasks.wait(for: task.id, timeout: 10)
        #expect(finished.status == .succeeded)
        #expect(finished.progress == 1)
        #expect(finished.detail?["done"] == .bool(true))

        let one = try panel.get("/api/v1/tasks/\(task.id)")
        #expect(one.status == 200)
        #expect(try one.json()["status"] as? String == "succeeded")
        #expect((try one.json()["createdAt"] as? String)?.contains("T") == true, "dates are ISO 8601")
        let list = try panel.get("/api/v1/tasks?guestId=g1")
        #expect((try list.json()["items"] as? [[String: Any]])?.first?["id"] as? String == task.id)

        let types = panel.app.events.page(since: 0).items.filter { $0.subject == task.id }.map(\.type)
        #expect(types.contains("task.created"))
        #expect(types.contains("task.succeeded"))
    }

    /// Clean-up a task leaves for after its end runs once the task is recorded finished and its
    /// final event is out, whether it succeeded or failed.
    @Test func afterFinishRunsOnceTheTaskIsRecordedFinished() throws {
        let panel = try PanelFixture()
        for fails in [false, true] {
            let seen = Mutex<(status: TaskInfo.Status?, finalEvent: Bool)?>(nil)
            let app = panel.app
            let done = DispatchSemaphore(value: 0)
            let task = try app.tasks.start(kind: "test", guestId: nil) { handle in
                let id = handle.id
                handle.afterFinish {
                    let status = try? app.tasks.get(id).status
                    let final = app.events.page(since: 0).items.contains {
                        $0.subject == id && ["task.succeeded", "task.failed"].contains($0.type)
                    }
                    seen.withLock { $0 = (status, final) }
                    done.signal()
                }
                if fails { throw PanelError.invalidState("failing on purpose") }
                return nil
            }
            #expect(done.wait(timeout: .now() + 10) == .success)
            let observed = seen.withLock { $0 }
            #expect(observed?.status == (fails ? .failed : .succeeded), "\(task.id): \(String(describing: observed))")
            #expect(observed?.finalEvent == true)
        }
    }

    @Test func secondTaskOnABusyGuestIs409() throws {
        let panel = try PanelFixture()
        let release = Atomic<Bool>(false)
        let first = try panel.app.tasks.start(kind: "slow", guestId: "g1") { _ in
            while !release.load(ordering: .relaxed) { usleep(1000) }
            return nil
        }
        #expect(throws: PanelError.self) { try panel.app.tasks.start(kind: "other", guestId: "g1") { _ in nil } }
        release.store(true, ordering: .relaxed)
        _ = try panel.app.tasks.wait(for: first.id, timeout: 10)
        let again = try panel.app.tasks.start(kind: "other", guestId: "g1") { _ in nil }
        #expect(try panel.app.tasks.wait(for: again.id, timeout: 10).status == .succeeded)
    }

    /// A client that acts on a task's final event (a resume right after a restore's
    /// `task.succeeded`) finds the guest free: it once got 409 `guest_busy` from the bench.
    @Test func theGuestIsFreeWhenTheFinalEventGoesOut() throws {
        let panel = try PanelFixture()
        let busyAtEvent = Mutex<[String: Bool]>([:])
        let announced = DispatchSemaphore(value: 0)
        let tasks = panel.app.tasks
        let subscription = panel.app.events.subscribe(since: panel.app.events.nextSeq) { event in
            guard ["task.succeeded", "task.failed"].contains(event.type), let id = event.subject else { return }
            busyAtEvent.withLock { $0[id] = tasks.isBusy(guestId: "g1") }
            announced.signal()
        }
        defer { panel.app.events.unsubscribe(subscription) }
        let succeeded = try tasks.start(kind: "test", guestId: "g1") { _ in nil }
        _ = try tasks.wait(for: succeeded.id, timeout: 10)
        struct Broken: Error {}
        let failed = try tasks.start(kind: "test", guestId: "g1") { _ in throw Broken() }
        _ = try tasks.wait(for: failed.id, timeout: 10)
        // The task is recorded finished just before its event goes out: wait for both events.
        for _ in 0..<2 { #expect(announced.wait(timeout: .now() + 10) == .success) }
        #expect(busyAtEvent.withLock { $0 } == [succeeded.id: false, failed.id: false])
    }

    @Test func cancelAndFailureAreRecorded() throws {
        let panel = try PanelFixture()
        let running = try panel.app.tasks.start(kind: "loop", guestId: nil) { handle in
            while !handle.isCancelled { usleep(1000) }
            throw MigrationCancelled()
        }
        let cancel = try panel.send("DELETE", "/api/v1/tasks/\(running.id)")
        #expect(cancel.status == 202)
        #expect((try cancel.json()["task"] as? [String: Any])?["id"] as? String == running.id)
        #expect(try panel.app.tasks.wait(for: running.id, timeout: 10).status == .cancelled)
        #expect(try panel.send("DELETE", "/api/v1/tasks/\(running.id)").status == 409)

        struct Boom: Error, CustomStringConvertible { var description: String { "disk on fire" } }
        let failing = try panel.app.tasks.start(kind: "fail", guestId: nil) { _ in throw Boom() }
        let failed = try panel.app.tasks.wait(for: failing.id, timeout: 10)
        #expect(failed.status == .failed)
        #expect(failed.error == "disk on fire")
        #expect(try panel.get("/api/v1/tasks/nope").status == 404)
        #expect(try panel.send("PATCH", "/api/v1/tasks/\(failing.id)", json: ["downtimeLimitMs": 100]).status == 409)
    }

    @Test func tasksSurviveARestartAndInterruptedOnesAreMarkedFailed() throws {
        let dataDir = NSTemporaryDirectory() + "emupanel-restart-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        var configuration = PanelConfiguration()
        configuration.listen = "127.0.0.1:0"
        configuration.settings.dataDir = dataDir
        configuration.publicDir = PanelFixture.publicDir
        let environment = ["EMUPANEL_TOKEN": PanelFixture.token]
        let release = Atomic<Bool>(false)
        var doneID = ""
        var stuckID = ""
        do {
            let app = try PanelApp(configuration: configuration, environment: environment)
            let done = try app.tasks.start(kind: "quick", guestId: nil) { _ in nil }
            doneID = done.id
            _ = try app.tasks.wait(for: done.id, timeout: 10)
            stuckID = try app.tasks.start(kind: "stuck", guestId: nil) { _ in
                while !release.load(ordering: .relaxed) { usleep(1000) }
                return nil
            }.id
            // A real restart is a new process; here, let the old task reach `running` first.
            while try app.tasks.get(stuckID).status != .running { usleep(1000) }
            app.stop()
        }
        let reopened = try PanelApp(configuration: configuration, environment: environment)
        #expect(try reopened.tasks.get(doneID).status == .succeeded)
        let stuck = try reopened.tasks.get(stuckID)
        #expect(stuck.status == .failed)
        #expect(stuck.error?.contains("interrupted") == true)
        release.store(true, ordering: .relaxed)
    }
}
