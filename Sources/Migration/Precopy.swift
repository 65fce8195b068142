import EmulatorCore
import Foundation
import RISCV
import Synchronization
import VMState

/// Settings a running transfer obeys and may have changed under it (QEMU's
/// `migrate-set-parameters`): downtime limit, bandwidth, cancel.
public final class TransferControl: Sendable {
    public let downtimeLimitMs = Atomic<UInt64>(300)
    /// Bytes per second; 0 = unlimited.
    public let maxBandwidth = Atomic<UInt64>(0)
    public let cancelled = Atomic<Bool>(false)

    public init(downtimeLimitMs: UInt64 = 300, maxBandwidth: UInt64 = 0) {
        self.downtimeLimitMs.store(downtimeLimitMs, ordering: .relaxed)
        self.maxBandwidth.store(maxBandwidth, ordering: .relaxed)
    }

    public var isCancelled: Bool { cancelled.load(ordering: .relaxed) }
}

/// The figures of QEMU's `query-migrate`, with its names.
public struct TransferStats: Sendable, Equatable {
    /// setup, active, device, completed, failed, cancelling, cancelled
    public var status = "setup"
    public var totalTimeMs: UInt64 = 0
    public var setupTimeMs: UInt64 = 0
    public var downtimeMs: UInt64?
    public var expectedDowntimeMs: UInt64 = 0
    public var transferred: UInt64 = 0
    public var remaining: UInt64 = 0
    public var total: UInt64 = 0
    public var duplicate: UInt64 = 0
    public var normal: UInt64 = 0
    public var dirtyPagesRate: UInt64 = 0
    public var mbps: Double = 0
    public var dirtySyncCount: UInt64 = 0
    public var iterations: Int = 0
    /// The limits in force at the last report (QEMU's `downtime-limit` and `max-bandwidth`
    /// parameters), so a result can be read against them.
    public var downtimeLimitMs: UInt64 = 0
    public var maxBandwidth: UInt64 = 0
    /// This transfer parked a running guest for the switch-over (and returned with it parked), as
    /// opposed to finding it paused already: only then is resuming it the caller's job.
    public var parkedGuest = false

    public init() {}

    /// Fraction done, for a progress bar: what went out over what went out plus what is left.
    public var progress: Double {
        let done = Double(transferred), left = Double(remaining)
        return status == "completed" ? 1 : (done + left > 0 ? min(0.99, done / (done + left)) : 0)
    }
}

extension LiveMachine {
    /// Streams RAM and device state to `sink`. A running guest keeps running while RAM goes out
    /// in passes over the pages it dirtied, until what is left fits the downtime limit at the
    /// measured bandwidth (tested every MiB, or after `maxPasses` passes); then it is parked for
    /// the last pages and the devices. Returns with the guest parked — the caller resumes it
    /// (snapshot) or hands it over (migration). On error the guest is resumed if this call parked it.
    public func streamState(to sink: ThrottledSink, transfer: TransferControl, maxPasses: Int = 30,
                            progress: (TransferStats) -> Void) throws -> TransferStats {
        guard !transferring.exchange(true, ordering: .acquiringAndReleasing) else { throw LiveMachineError.transferInProgress }
        defer { transferring.store(false, ordering: .releasing) }
        let start = ContinuousClock.now
        var stats = TransferStats()
        let wasRunning = isRunning && !control.isPaused
        let pageSize = UInt64(GuestRAM.pageSize)
        let type = machineType
        // Logging starts before the populated pages are read, so a page is either populated
        // already (first pass) or written later (dirty log); pages never populated are zero
        // and the loading side starts from zeroed RAM.
        let (state, populated) = try onCPU { machine -> (MachineStateBox, [RAMPage]) in
            machine.setDirtyLogging(true)
            return (MachineStateBox(try machine.machineState(for: type)), machine.populatedPages())
        }
        var parkedHere = false
        defer {
            _ = try? onCPU { $0.setDirtyLogging(false) }
        }
        do {
            let migration = try state.value.startMigration(to: sink)
            stats.total = state.value.ramBlocks.reduce(0) { $0 + UInt64($1.memory.count) }
            // What the first pass has to send, so the first report's progress is not "done".
            stats.remaining = UInt64(populated.count) * pageSize
            stats.setupTimeMs = milliseconds(since: start)
            update(&stats, migration, transfer, since: start)
            stats.status = "active"
            progress(stats)

            if wasRunning {
                // A pass goes out in chunks, and after each the dirty log is synced and the stop
                // test made (QEMU does it after every iterate call): the switch-over can come in
                // the middle of a pass, and then sends what the pass had left plus what was
                // dirtied meanwhile — a page is never sent twice for nothing.
                var pass = populated
                var sent = 0
                var dirtied = Set<RAMPage>()
                var lastReport = start
                var lastTest = start
                var meter = BandwidthMeter(bytesSent: sink.bytesSent)
                passes: while !pass.isEmpty {
                    let passStart = ContinuousClock.now
                    stats.iterations += 1
                    while sent < pass.count {
                        if transfer.isCancelled { throw MigrationCancelled() }
                        let chunk = pass[sent..<min(pass.count, sent + Self.chunkPages)]
                        try migration.iterate(dirtyPages: chunk)
                        sent += chunk.count
                        // A large guest would sync thousands of times a pass; once a millisecond is enough.
                        guard sent == pass.count || ContinuousClock.now - lastTest >= Self.minimumTestInterval else { continue }
                        lastTest = .now
                        meter.observe(bytesSent: sink.bytesSent)
                        let bandwidth = meter.bytesPerSecond
                        dirtied.formUnion(try onCPU { $0.takeDirtyPages() })
                        stats.dirtySyncCount += 1
                        // Over at least 100 ms, for the same reason as the bandwidth.
                        stats.dirtyPagesRate = UInt64(Double(dirtied.count) / max(0.1, Self.seconds(ContinuousClock.now - passStart)))
                        // An upper bound: a page both unsent and dirtied counts twice.
                        stats.remaining = UInt64(pass.count - sent + dirtied.count) * pageSize
                        stats.mbps = bandwidth * 8 / 1e6
                        stats.expectedDowntimeMs = bandwidth > 0 ? UInt64(Double(stats.remaining) / bandwidth * 1000) : 0
                        update(&stats, migration, transfer, since: start)
                        if ContinuousClock.now - lastReport >= .milliseconds(100) {
                            lastReport = .now
                            progress(stats)
                        }
                        let limit = transfer.downtimeLimitMs.load(ordering: .relaxed)
                        if stats.expectedDowntimeMs <= limit || stats.iterations >= maxPasses { break passes }
                    }
                    pass = dirtied.sorted(by: Self.streamOrder)
                    sent = 0
                    dirtied.removeAll(keepingCapacity: true)
                }
                let pauseStart = ContinuousClock.now
                pause()
                parkedHere = true
                stats.parkedGuest = true
                stats.status = "device"
                dirtied.formUnion(pass[sent...])
                dirtied.formUnion(try onCPU { $0.takeDirtyPages() })
                stats.dirtySyncCount += 1
                try migration.complete(remainingDirtyPages: dirtied.sorted(by: Self.streamOrder))
                stats.downtimeMs = milliseconds(since: pauseStart)
            } else {
                // Already paused (or never started): everything in one go, no downtime to speak of.
                stats.status = "device"
                try migration.complete(remainingDirtyPages: populated)
                stats.downtimeMs = 0
            }
            stats.remaining = 0
            update(&stats, migration, transfer, since: start)
            // QEMU's figure at completion: everything sent over the time after setup.
            if stats.totalTimeMs > stats.setupTimeMs {
                stats.mbps = Double(stats.transferred) * 8 / Double(stats.totalTimeMs - stats.setupTimeMs) / 1000
            }
            stats.status = "completed"
            progress(stats)
            return stats
        } catch {
            if parkedHere { resume() }
            throw error
        }
    }

    /// Pages per stream section: 1 MiB, after which the stop test runs (at most once a millisecond).
    static let chunkPages = 256
    static let minimumTestInterval = Duration.milliseconds(1)

    static func streamOrder(_ a: RAMPage, _ b: RAMPage) -> Bool { (a.block, a.index) < (b.block, b.index) }

    private func update(_ stats: inout TransferStats, _ migration: OutgoingMigration, _ transfer: TransferControl,
                        since start: ContinuousClock.Instant) {
        stats.downtimeLimitMs = transfer.downtimeLimitMs.load(ordering: .relaxed)
        stats.maxBandwidth = transfer.maxBandwidth.load(ordering: .relaxed)
        stats.transferred = migration.bytesWritten
        stats.duplicate = migration.ramStats.duplicatePages
        stats.normal = migration.ramStats.normalPages
        stats.totalTimeMs = milliseconds(since: start)
    }

    private func milliseconds(since start: ContinuousClock.Instant) -> UInt64 {
        UInt64(Self.seconds(ContinuousClock.now - start) * 1000)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// Carries a MachineState off the CPU thread; it is used only while the transfer runs.
final class MachineStateBox: @unchecked Sendable { // built on the CPU thread, then used by the one transfer thread; device reads happen while parked
    let value: MachineState
    init(_ value: MachineState) { self.value = value }
}
