import Foundation
import HTTPTestSupport
import Testing

/// The hand-over's edges with QEMU on both sides: a destination QEMU that loaded the stream but
/// never got GO is ended with the reservation, not left paused and loaded beside the source's.
extension MigrationTests {
    static let qemuInstalled = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
        .contains { FileManager.default.isExecutableFile(atPath: "\($0)/qemu-system-riscv64") }

    /// The QEMU processes whose parent is `pid`.
    func qemuChildren(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { child in
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                let close = stat.range(of: ")", options: .backwards)
            else { return false }
            // pid (comm) state ppid …: comm may hold spaces, so read past its closing parenthesis.
            let fields = stat[close.upperBound...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == pid && stat.contains("(qemu-system")
        }
    }

    @Test(.enabled(if: qemuInstalled, "qemu-system-riscv64 is not installed"))
    func destinationQEMUWithoutGOIsEnded() throws {
        let cache = NSTemporaryDirectory() + "emupanel-handover-qemu-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let qemu: [String: Any] = ["enabled": true, "binaries": ["qemu-system-riscv64"], "cacheDir": cache]
        let b = try ServeProcess(name: "dest", qemu: qemu)
        let relay = try HandOverRelay(destinationPort: b.port, behaviour: .swallowGO)
        let a = try ServeProcess(name: "source", qemu: qemu)
        for host in [a, b] {
            #expect(
                try eventually(within: 120) { (try host.get("/host")["qemu"] as? [String: Any])?["status"] as? String == "ready" },
                "QEMU discovery finished")
        }
        let id = try startMemoryPattern(on: a, memoryMiB: 64, backend: "qemu")
        let started = try a.send("POST", "/guests/\(id)/migrate", ["target": ["url": relay.url, "token": b.token], "downtimeLimitMs": 60_000])
        let taskID = try #require((try started.json()["task"] as? [String: Any])?["id"] as? String, "\(started.text)")
        let task = try a.waitForTask(taskID)
        #expect(relay.swallowedGO, "the source sent GO after the destination's OK: \(task)")
        #expect(task["status"] as? String == "failed", "\(task)")
        #expect(try a.get("/guests/\(id)")["state"] as? String == "running")
        #expect(try eventually { try guests(on: b).isEmpty }, "the destination dropped its reservation without GO")
        #expect(
            eventually(within: 15) { qemuChildren(of: b.process.processIdentifier).isEmpty },
            "the destination's QEMU went with it: \(qemuChildren(of: b.process.processIdentifier))")
        #expect(qemuChildren(of: a.process.processIdentifier).count == 1, "the source's QEMU runs on")
        try expectStillChecking(id, on: a)
        #expect(try a.send("POST", "/guests/\(id)/stop").status == 200)
    }
}
