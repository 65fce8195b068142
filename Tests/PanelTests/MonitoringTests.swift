import Foundation
import HTTPTestSupport
import PanelCore
import PanelHTTP
import RISCV
import Testing

/// What the UI's graphs, console and task log viewer read: per-guest and host metrics, the event
/// stream's live extras (metrics rounds, one guest's console), and each task's log.
@Suite("Monitoring: metrics, live stream extras, task logs", .serialized)
struct MonitoringTests {
    func panel() throws -> PanelFixture {
        try PanelFixture(machines: VirtMachineTypes.registry)
    }

    func startedGuest(_ panel: PanelFixture, _ name: String, image: String, memoryMiB: Int) throws -> String {
        let created = try panel.send("POST", "/api/v1/guests", json: ["name": name, "image": image, "machineType": "virt", "memoryMiB": memoryMiB])
        let id = try #require(try created.json()["id"] as? String)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/start").status == 200)
        return id
    }

    /// Samples until `ready` holds for the guest's newest sample (rates need two rounds, CPU time
    /// comes in clock ticks); each round is taken here, not waited for.
    func sample(_ panel: PanelFixture, _ id: String, until ready: ([String: Any]) -> Bool) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(30)
        var last: [String: Any] = [:]
        while Date() < deadline {
            panel.app.services.metrics.sampleNow()
            let samples = try #require(try panel.get("/api/v1/guests/\(id)/metrics").json()["samples"] as? [[String: Any]])
            if let newest = samples.last {
                last = newest
                if ready(newest) { return newest }
            }
        }
        Issue.record("no sample met the condition; the last was \(last)")
        return last
    }

    @Test func guestMetricsCountInstructionsDirtyPagesCPUAndResidentRAM() throws {
        let panel = try panel()
        let id = try startedGuest(panel, "pattern", image: "memory-pattern", memoryMiB: 64)
        // The memory-pattern guest rewrites its 4096 pages over and over, on a busy CPU thread.
        let newest = try self.sample(panel, id) { sample in
            (sample["instructionsPerSecond"] as? Double ?? 0) > 0 && (sample["dirtyPagesPerSecond"] as? Double ?? 0) > 0
                && (sample["cpuPercent"] as? Double ?? 0) > 0
        }
        #expect((newest["rssBytes"] as? Int ?? 0) >= 16 << 20, "its 16 MiB pattern is resident")
        #expect((newest["rssBytes"] as? Int ?? 0) <= 64 << 20)
        #expect((newest["cpuPercent"] as? Double ?? 0) <= 150, "one CPU thread (with slack for 10 ms clock ticks over 100 ms)")

        let host = try panel.get("/api/v1/host/metrics").json()
        #expect(host["intervalSeconds"] as? Double == 1 || host["intervalSeconds"] as? Int == 1)
        let hostSample = try #require((host["samples"] as? [[String: Any]])?.last)
        #expect((hostSample["rssBytes"] as? Int ?? 0) > 16 << 20, "the panel holds the guest's RAM")

        // A paused guest retires nothing and writes nothing.
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/pause").status == 200)
        panel.app.services.metrics.sampleNow()
        let paused = try self.sample(panel, id) { $0["instructionsPerSecond"] as? Double == 0 || $0["instructionsPerSecond"] as? Int == 0 }
        #expect(paused["dirtyPagesPerSecond"] as? Double == 0 || paused["dirtyPagesPerSecond"] as? Int == 0)

        // A reset starts the retired count again: no wrap-around into 10^19 instructions a second.
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/resume").status == 200)
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/reset").status == 200)
        let afterReset = try self.sample(panel, id) { ($0["instructionsPerSecond"] as? Double ?? 0) > 0 }
        #expect((afterReset["instructionsPerSecond"] as? Double ?? .infinity) < 1e10)

        #expect(try panel.get("/api/v1/guests/g-nothere/metrics").status == 404)
    }

    @Test func eventStreamCarriesMetricsAndTheConsoleWhenAsked() throws {
        let panel = try panel()
        let id = try startedGuest(panel, "echo", image: "uart-echo", memoryMiB: 16)
        #expect(try panel.get("/api/v1/events/stream?console=g-nothere").status == 404)
        #expect(try panel.get("/api/v1/events/stream?metrics=maybe").status == 400)

        let connection = try RawHTTPConnection(port: panel.port)
        try connection.send(
            "GET", "/api/v1/events/stream?metrics=true&console=\(id)&consoleSince=0",
            headers: ["Authorization": "Bearer \(PanelFixture.token)"])
        var seen: Set<String> = []
        var console = ""
        var lastID: String?
        var idBeforeExtras = false
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !(seen.contains("metrics") && console.contains("echo")) {
            if seen.contains("console.output") { panel.app.services.metrics.sampleNow() }
            guard let line = try connection.readLine() else { break }
            if line.hasPrefix("id: ") { lastID = String(line.dropFirst(4)) }
            guard line.hasPrefix("data: ") else { continue }
            let message = try #require(try JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any])
            let type = message["type"] as? String ?? ""
            if type == "metrics" || type == "console.output" {
                // Not numbered: no id line goes with them, so Last-Event-ID stays an event's.
                if lastID != nil { idBeforeExtras = true }
                #expect(message["seq"] as? Int == 0)
                seen.insert(type)
            }
            if type == "console.output" {
                #expect(message["subject"] as? String == id)
                let data = try #require(message["data"] as? [String: Any])
                console += data["data"] as? String ?? ""
                #expect((data["next"] as? Int ?? 0) > 0)
            }
            lastID = nil
        }
        #expect(seen == ["metrics", "console.output"])
        #expect(console.contains("echo"), "\(console)")
        #expect(!idBeforeExtras)
    }

    @Test func aTaskKeepsItsLogAndEachLineIsAnEvent() throws {
        let panel = try panel()
        let task = try panel.app.tasks.start(kind: "test", guestId: "g1") { handle in
            handle.log("step one")
            handle.log("step two")
            return nil
        }
        #expect(try panel.app.tasks.wait(for: task.id, timeout: 10).status == .succeeded)
        let lines = try #require(try panel.get("/api/v1/tasks/\(task.id)/log").json()["items"] as? [[String: Any]])
        #expect(lines.map { $0["message"] as? String } == ["test started for guest g1", "step one", "step two", "test succeeded"])
        #expect(lines.map { $0["seq"] as? Int } == [1, 2, 3, 4])
        let later = try #require(try panel.get("/api/v1/tasks/\(task.id)/log?since=2").json()["items"] as? [[String: Any]])
        #expect(later.map { $0["message"] as? String } == ["step two", "test succeeded"])
        let events = panel.app.events.page(since: 0).items.filter { $0.type == "task.log" && $0.subject == task.id }
        #expect(events.map { $0.data["message"] } == lines.map { ($0["message"] as? String).map(JSON.string) })
        #expect(events.allSatisfy { $0.data["guestId"] == "g1" })
        #expect(try panel.get("/api/v1/tasks/t-nothere/log").status == 404)
        #expect(try panel.get("/api/v1/tasks/\(task.id)/log?since=-1").status == 400)
    }

    @Test func cancelAndSettingsChangesAreLogged() throws {
        let panel = try panel()
        let task = try panel.app.tasks.start(kind: "loop", guestId: nil, adjust: { _ in }) { handle in
            while !handle.isCancelled { usleep(1000) }
            throw CancelledHere()
        }
        let deadline = Date().addingTimeInterval(10)
        while try panel.app.tasks.log(of: task.id).isEmpty, Date() < deadline { usleep(1000) }
        #expect(try panel.send("PATCH", "/api/v1/tasks/\(task.id)", json: ["downtimeLimitMs": 120]).status == 200)
        #expect(try panel.send("DELETE", "/api/v1/tasks/\(task.id)").status == 202)
        #expect(try panel.app.tasks.wait(for: task.id, timeout: 10).status == .cancelled)
        let messages = try panel.app.tasks.log(of: task.id).map(\.message)
        #expect(messages == ["loop started", "settings changed: downtimeLimitMs = 120", "cancel requested", "loop cancelled: stopped here"])
    }

    struct CancelledHere: Error, CustomStringConvertible { var description: String { "stopped here" } }

    /// A snapshot's log tells its phases and its file; its figures carry the limits they ran under.
    @Test func aSnapshotLogsItsPhasesAndItsFile() throws {
        let panel = try panel()
        let id = try startedGuest(panel, "echo", image: "uart-echo", memoryMiB: 16)
        let started = try panel.send("POST", "/api/v1/guests/\(id)/snapshots", json: ["name": "one", "description": ""])
        let taskID = try #require((try started.json()["task"] as? [String: Any])?["id"] as? String)
        let task = try panel.app.tasks.wait(for: taskID, timeout: 60)
        #expect(task.status == .succeeded, "\(task.error ?? "")")
        let messages = try panel.app.tasks.log(of: taskID).map(\.message)
        #expect(messages.first == "snapshot started for guest \(id)")
        #expect(messages.contains { $0.hasPrefix("copying RAM while the guest runs") && $0.contains("downtime limit 50 ms") })
        #expect(messages.contains { $0.hasPrefix("state sent:") })
        #expect(messages.contains { $0.hasPrefix("wrote one.qevm:") && $0.contains("checksum xxh128:") })
        #expect(messages.last == "snapshot succeeded")
        #expect(task.detail?["transfer"]?["downtime-limit"] == .number(50))
        #expect(task.detail?["transfer"]?["max-bandwidth"] == .number(0))
    }
}
