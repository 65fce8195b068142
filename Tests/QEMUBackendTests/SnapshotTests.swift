import CXXHash
// Snapshots of QEMU guests: QEMU's migration stream into a snapshot file (temporary
// file, SHA-256, fsync, rename), restored into a new QEMU reading it with -incoming fd:N, with the
// guest's own memory check passing afterwards; what QEMU refuses, refused up front.
import Crypto
import EmulatorCore
import Foundation
import Migration
import Testing
import VMState

@testable import QEMUBackend

@Suite(.serialized, .enabled(if: Installed.riscv64 != nil, "needs qemu-system-riscv64 (qemu-system-misc)"))
struct SnapshotTests {
    /// What `xxh128sum` prints for the file, the checksum built-in snapshots carry too.
    static func checksum(_ path: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let hash = data.withUnsafeBytes { XXH3_128bits($0.baseAddress, $0.count) }
        return "xxh128:"
            + [hash.high64, hash.low64].map { value in
                let digits = String(value, radix: 16)
                return String(repeating: "0", count: 16 - digits.count) + digits
            }.joined()
    }

    @Test func aRunningGuestIsSavedAndRestoredWithItsMemoryIntact() throws {
        let scratch = Scratch("snapshot")
        defer { scratch.remove() }
        let configuration = Guests.riscv("mempattern-forever.elf")
        let (guest, recorder) = try Recorder.start(configuration, in: scratch)
        defer { guest.kill() }
        #expect(recorder.waitForConsole("pass 32 ok"))
        let path = scratch.sub("snapshots/first.qevm")
        var reports: [TransferStats] = []
        let saved = try guest.saveSnapshot(to: path) { reports.append($0) }
        // The file is complete, hashed like a built-in snapshot, and nothing temporary is left.
        #expect(saved.stats.status == "completed")
        #expect(saved.file.sizeBytes == Int64(try FileManager.default.attributesOfItem(atPath: path)[.size] as! UInt64))
        #expect(saved.file.checksum == (try Self.checksum(path)))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.sub("snapshots")) == ["first.qevm"])
        #expect(saved.stats.total >= 32 << 20)
        #expect(saved.stats.transferred > 16 << 20)
        #expect(reports.last?.status == "completed")
        // The guest runs on after the save.
        #expect(try guest.runState() == "running")
        let passAtSave = recorder.lastPass
        #expect(recorder.wait { $0.lastPass > passAtSave })
        guest.stop()

        // snapshot inspect reads QEMU's file like any other.
        let inspection = try SnapshotInspection.inspect(path: path)
        #expect(inspection.machineType == "virt")
        #expect(inspection.devices.contains { $0.name == "cpu" })

        let (restored, restoredRecorder) = try Recorder.restore(
            configuration, from: path, sha256: saved.file.checksum,
            in: scratch)
        defer { restored.kill() }
        #expect(try restored.runState() == "running")
        // mempattern checks every page on every pass: two more passes that print "ok" mean the
        // whole 16 MiB pattern came back, and the pass count continues from the snapshot.
        #expect(restoredRecorder.wait { $0.passLines >= 2 })
        #expect(!restoredRecorder.console.contains("holds"))
        #expect(restoredRecorder.lastPass > 32)
        #expect(!restoredRecorder.console.contains("memory-pattern: 4096 pages"))
    }

    @Test func aGuestThatNeverConvergesIsPausedForTheRest() throws {
        let scratch = Scratch("snapshot-converge")
        defer { scratch.remove() }
        let (guest, recorder) = try Recorder.start(Guests.riscv("mempattern-forever.elf"), in: scratch)
        defer { guest.kill() }
        #expect(recorder.waitForConsole("pass 16 ok"))
        // 1 ms of downtime at 16 MiB/s: QEMU alone would resend the dirtied pattern for ever.
        let transfer = TransferControl(downtimeLimitMs: 1, maxBandwidth: 16 << 20)
        var reports: [TransferStats] = []
        let saved = try guest.saveSnapshot(to: scratch.sub("busy.qevm"), transfer: transfer, maxPasses: 2) {
            reports.append($0)
        }
        #expect(saved.stats.dirtySyncCount >= 2)
        #expect(reports.contains { $0.parkedGuest })
        #expect(try guest.runState() == "running")
        let pass = recorder.lastPass
        #expect(recorder.wait { $0.lastPass > pass })
    }

    @Test func aPausedGuestStaysPausedAndRestoresPaused() throws {
        let scratch = Scratch("snapshot-paused")
        defer { scratch.remove() }
        let configuration = Guests.riscv("echo.elf")
        let (guest, recorder) = try Recorder.start(configuration, in: scratch)
        defer { guest.kill() }
        #expect(recorder.waitForConsole("echo: ready"))
        try guest.pause()
        let saved = try guest.saveSnapshot(to: scratch.sub("paused.qevm"))
        #expect(saved.stats.downtimeMs != nil)
        #expect(try guest.runState() != "running")
        guest.stop()

        let (restored, restoredRecorder) = try Recorder.restore(
            configuration, from: scratch.sub("paused.qevm"),
            sha256: saved.file.checksum, in: scratch, paused: true)
        defer { restored.kill() }
        #expect(try restored.runState() == "paused")
        try restored.resume()
        // The restored echo guest still has its UART and interrupts set up: it echoes at once.
        try restored.sendConsole(Array("x".utf8))
        #expect(restoredRecorder.waitForConsole("x"))
    }

    @Test(.enabled(if: Installed.x86_64 != nil, "needs qemu-system-x86_64 (qemu-system-x86)"))
    func aQ35GuestInSeaBIOSIsSavedAndRestored() throws {
        let scratch = Scratch("snapshot-q35")
        defer { scratch.remove() }
        // No disk: SeaBIOS looks for something to boot; its state is what travels.
        let configuration = QEMUGuestConfiguration(binary: Installed.x86_64!, machineType: "pc-q35-7.2", memoryMiB: 32)
        let (guest, _) = try Recorder.start(configuration, in: scratch)
        defer { guest.kill() }
        let saved = try guest.saveSnapshot(to: scratch.sub("q35.qevm"))
        #expect(saved.stats.status == "completed")
        #expect(try guest.runState() == "running")
        guest.stop()
        #expect(try SnapshotInspection.inspect(path: scratch.sub("q35.qevm")).machineType == "pc-q35-7.2")
        let (restored, _) = try Recorder.restore(
            configuration, from: scratch.sub("q35.qevm"), sha256: saved.file.checksum,
            in: scratch)
        defer { restored.kill() }
        #expect(try restored.runState() == "running")
    }

    @Test func aGuestQEMUBlocksIsRefusedUpFrontNamingTheDevice() throws {
        let scratch = Scratch("snapshot-blocked")
        defer { scratch.remove() }
        let guest = try QEMUGuest.start(
            Guests.riscv("echo.elf", devices: ["nvme,serial=emupanel"]),
            directory: scratch.sub("guest"), logPath: scratch.sub("guest.log"))
        defer { guest.kill() }
        let error = #expect(throws: QEMUError.self) { try guest.saveSnapshot(to: scratch.sub("blocked.qevm")) }
        guard case .migrationBlocked(let blockers) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(blockers.first?.device?.hasSuffix("/nvme") == true)
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("blocked.qevm")))
        #expect(try guest.runState() == "running")
    }

    @Test func aDamagedOrForeignSnapshotLeavesNoQEMUBehind() throws {
        let scratch = Scratch("snapshot-damaged")
        defer { scratch.remove() }
        let configuration = Guests.riscv("echo.elf")
        let guest = try QEMUGuest.start(configuration, directory: scratch.sub("guest"), logPath: scratch.sub("guest.log"))
        defer { guest.kill() }
        let saved = try guest.saveSnapshot(to: scratch.sub("good.qevm"))
        guest.stop()

        // A recorded checksum that does not match: the new QEMU is discarded.
        let exits = Recorder()
        #expect(throws: SnapshotFileError.self) {
            try QEMUGuest.restore(
                configuration, fromSnapshot: scratch.sub("good.qevm"), expectedSHA256: String(repeating: "0", count: 64),
                directory: scratch.sub("bad-sum"), logPath: scratch.sub("bad-sum.log"), events: exits.events)
        }
        #expect(exits.wait { $0.exit != nil })

        // A guest configured differently: QEMU refuses the stream, and its reason comes back.
        var bigger = configuration
        bigger.memoryMiB = 64
        let error = #expect(throws: QEMUError.self) {
            try QEMUGuest.restore(
                bigger, fromSnapshot: scratch.sub("good.qevm"), expectedSHA256: saved.file.checksum,
                directory: scratch.sub("bigger"), logPath: scratch.sub("bigger.log"))
        }
        guard case .incomingFailed(let reason, let exit) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(reason.contains("Size mismatch: riscv_virt_board.ram"))
        #expect(exit?.status == 1)
    }
}
