// Live migration between two QEMU processes driven by the module: the source migrates
// to a QEMU listening with -incoming defer on a port it chose; downtime and bandwidth
// change mid-flight, a cancel keeps the guest running, and when the destination fails
// its own reason (stderr, exit status) is captured — including the case where QEMU's
// source believes it succeeded.
import Foundation
import Migration
import Testing

@testable import QEMUBackend

@Suite(.serialized, .enabled(if: Installed.riscv64 != nil, "needs qemu-system-riscv64 (qemu-system-misc)"))
struct LiveMigrationTests {
    /// A running memory-pattern guest, past its first printed pass.
    static func source(_ scratch: Scratch, devices: [String] = []) throws -> (QEMUGuest, Recorder) {
        let (guest, recorder) = try Recorder.start(
            Guests.riscv("mempattern-forever.elf", devices: devices), in: scratch,
            "source")
        #expect(recorder.waitForConsole("pass 16 ok"))
        return (guest, recorder)
    }

    static func destination(_ scratch: Scratch, memoryMiB: Int = 32) throws -> (QEMUIncomingMigration, Recorder) {
        let recorder = Recorder()
        let incoming = try QEMUIncomingMigration.listen(
            Guests.riscv("mempattern-forever.elf", memoryMiB: memoryMiB),
            directory: scratch.sub("destination"),
            logPath: scratch.sub("destination.log"), events: recorder.events)
        return (incoming, recorder)
    }

    @Test func aRunningGuestMovesAndKeepsItsMemory() throws {
        let scratch = Scratch("migrate")
        defer { scratch.remove() }
        let (source, sourceRecorder) = try Self.source(scratch)
        defer { source.kill() }
        let (incoming, destinationRecorder) = try Self.destination(scratch)
        defer { incoming.cancel() }
        #expect(incoming.port != 0)
        var reports: [TransferStats] = []
        let stats = try source.migrate(toHost: incoming.host, port: incoming.port) { reports.append($0) }
        #expect(stats.status == "completed")
        #expect(stats.transferred > 16 << 20)
        #expect(stats.downtimeMs != nil)
        #expect(reports.contains { $0.status == "active" || $0.status == "completed" })
        // QEMU's source holds the guest paused until told what happened on the other side.
        #expect(try source.runState() == "postmigrate")
        let passAtHandOver = sourceRecorder.lastPass
        let destination = try incoming.waitForCompletion()
        #expect(try destination.runState() == "paused")
        try destination.resume()
        source.stop()
        #expect(destinationRecorder.wait { $0.passLines >= 2 })
        #expect(!destinationRecorder.console.contains("holds"))
        #expect(destinationRecorder.lastPass > passAtHandOver)
    }

    @Test func downtimeAndBandwidthChangeMidFlight() throws {
        let scratch = Scratch("migrate-tune")
        defer { scratch.remove() }
        let (source, _) = try Self.source(scratch)
        defer { source.kill() }
        let (incoming, _) = try Self.destination(scratch)
        defer { incoming.cancel() }
        // 1 MiB/s would take ~20 s for this guest; raised mid-flight, it finishes at once.
        let transfer = TransferControl(downtimeLimitMs: 300, maxBandwidth: 1 << 20)
        var before: QMPValue?
        let stats = try source.migrate(toHost: incoming.host, port: incoming.port, transfer: transfer) { stats in
            guard before == nil, stats.status == "active", stats.transferred > 256 << 10 else { return }
            before = try? source.qmp.execute("query-migrate-parameters")
            transfer.maxBandwidth.store(0, ordering: .relaxed)
            transfer.downtimeLimitMs.store(500, ordering: .relaxed)
        }
        #expect(stats.status == "completed")
        #expect(before?["max-bandwidth"]?.intValue == 1 << 20)
        #expect(before?["downtime-limit"]?.intValue == 300)
        let after = try source.qmp.execute("query-migrate-parameters")
        #expect(after["max-bandwidth"]?.intValue == 0)
        #expect(after["downtime-limit"]?.intValue == 500)
        _ = try incoming.waitForCompletion()
    }

    @Test func aCancelledMigrationLeavesTheGuestRunningHere() throws {
        let scratch = Scratch("migrate-cancel")
        defer { scratch.remove() }
        let (source, sourceRecorder) = try Self.source(scratch)
        defer { source.kill() }
        let (incoming, _) = try Self.destination(scratch)
        defer { incoming.cancel() }
        let transfer = TransferControl(downtimeLimitMs: 300, maxBandwidth: 256 << 10)
        let error = #expect(throws: QEMUError.self) {
            try source.migrate(toHost: incoming.host, port: incoming.port, transfer: transfer) { stats in
                if stats.status == "active", stats.transferred > 0 { transfer.cancelled.store(true, ordering: .relaxed) }
            }
        }
        guard case .migrationCancelled = error else { Issue.record("\(String(describing: error))"); return }
        #expect(try source.runState() == "running")
        let pass = sourceRecorder.lastPass
        #expect(sourceRecorder.wait { $0.lastPass > pass })
        // The destination saw its stream end early and gave up on its own.
        #expect(throws: QEMUError.self) { try incoming.waitForCompletion(timeout: .seconds(30)) }
        // The guest can be migrated again afterwards.
        #expect(try source.migrationStats().status == "cancelled")
    }

    @Test func aDestinationThatRefusesTheStreamSaysWhy() throws {
        let scratch = Scratch("migrate-refused")
        defer { scratch.remove() }
        let (source, sourceRecorder) = try Self.source(scratch)
        defer { source.kill() }
        // The destination was configured with twice the memory: QEMU refuses the RAM block list.
        let (incoming, _) = try Self.destination(scratch, memoryMiB: 64)
        defer { incoming.cancel() }
        // QEMU's source sees only its side of the broken connection…
        #expect(throws: QEMUError.self) { try source.migrate(toHost: incoming.host, port: incoming.port) }
        #expect(try source.runState() == "running")
        // …the destination's own words say why.
        let error = #expect(throws: QEMUError.self) { try incoming.waitForCompletion(timeout: .seconds(30)) }
        guard case .incomingFailed(let reason, let exit) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(reason.contains("Size mismatch: riscv_virt_board.ram"))
        #expect(exit?.status == 1)
        #expect(incoming.failure != nil)
        let pass = sourceRecorder.lastPass
        #expect(sourceRecorder.wait { $0.lastPass > pass })
    }

    @Test func aDestinationThatFailsAfterTheSourceCompletedIsCaughtToo() throws {
        let scratch = Scratch("migrate-late-failure")
        defer { scratch.remove() }
        // The source has a device the destination lacks: RAM loads, the device section does not.
        let (source, sourceRecorder) = try Self.source(scratch, devices: ["virtio-rng-device"])
        defer { source.kill() }
        let (incoming, destinationRecorder) = try Self.destination(scratch)
        defer { incoming.cancel() }
        let outcome = Result { try source.migrate(toHost: incoming.host, port: incoming.port) }
        let error = #expect(throws: QEMUError.self) { try incoming.waitForCompletion(timeout: .seconds(30)) }
        guard case .incomingFailed(let reason, _) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(reason.contains("Unknown savevm section or instance"))
        #expect(destinationRecorder.wait { $0.exit?.status == 1 })
        // Whatever QEMU's source concluded (often "completed"), the guest resumes here.
        if case .success = outcome { #expect(try source.runState() == "postmigrate") }
        if try source.runState() != "running" { try source.resume() }
        let pass = sourceRecorder.lastPass
        #expect(sourceRecorder.wait { $0.lastPass > pass })
    }
}
