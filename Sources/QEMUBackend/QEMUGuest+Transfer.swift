// What a snapshot and an outgoing migration share: QEMU's migration parameters, and
// following a running migration — QEMU's MIGRATION events wake the loop, `query-migrate`
// gives the figures (as TransferStats), and a TransferControl changed mid-flight is
// applied with `migrate-set-parameters` or ends the transfer with `migrate_cancel`.
import Foundation
import Migration

extension QEMUGuest {
    /// `migrate-set-parameters`: the downtime QEMU may take for the switch-over, and the
    /// bandwidth in bytes per second (0 = unlimited; QEMU's own default is 32 MiB/s).
    public func setMigrationParameters(downtimeLimitMs: UInt64, maxBandwidth: UInt64) throws {
        try qmp.execute(
            "migrate-set-parameters",
            [
                "downtime-limit": .int(Int64(clamping: downtimeLimitMs)),
                "max-bandwidth": .int(Int64(clamping: maxBandwidth)),
            ])
    }

    /// `migrate_cancel`: QEMU stops the transfer and a guest that was running keeps running.
    public func cancelMigration() throws { try qmp.execute("migrate_cancel") }

    /// `query-migrate` as TransferStats.
    public func migrationStats() throws -> TransferStats { TransferStats(queryMigrate: try qmp.execute("query-migrate")) }

    /// Claims the guest's one transfer slot and refuses up front what QEMU would refuse.
    func beginTransfer(_ transfer: TransferControl) throws {
        guard !transferring.exchange(true, ordering: .acquiringAndReleasing) else { throw QEMUError.transferInProgress }
        do {
            let blockers = try migrationBlockers()
            guard blockers.isEmpty else { throw QEMUError.migrationBlocked(blockers) }
            try setMigrationParameters(
                downtimeLimitMs: transfer.downtimeLimitMs.load(ordering: .relaxed),
                maxBandwidth: transfer.maxBandwidth.load(ordering: .relaxed))
            transferWatch.reset()
        } catch {
            endTransfer()
            throw error
        }
    }

    func endTransfer() { transferring.store(false, ordering: .releasing) }

    /// Follows a running migration: on each MIGRATION event (or every 100 ms) it reads
    /// query-migrate, reports it, applies changed settings and a cancel, until QEMU ends the
    /// transfer; `abandon` returning true cancels it too. A guest that dirties memory faster
    /// than it can be sent never lets QEMU converge, so after `maxPasses` passes over RAM the
    /// guest is paused for the rest (the built-in core does the same; libvirt's
    /// `--timeout-suspend` counts seconds instead); if the transfer then fails it is resumed.
    /// Returns the final figures on `completed`.
    func followMigration(
        transfer: TransferControl, deadline: ContinuousClock.Instant?, maxPasses: UInt64,
        progress: (TransferStats) -> Void, abandon: () -> Bool = { false }
    ) throws -> TransferStats {
        var applied = (transfer.downtimeLimitMs.load(ordering: .relaxed), transfer.maxBandwidth.load(ordering: .relaxed))
        var cancelSent = false
        var pausedHere = false
        defer {
            // A transfer that did not complete leaves the guest as it found it.
            if pausedHere, (try? runState()) != "postmigrate" { try? resume() }
        }
        var lastReport = ContinuousClock.now - .seconds(1)
        while true {
            let watched = transferWatch.wait(upTo: .milliseconds(100))
            if let exit = watched.exit { throw QEMUError.exited(exit) }
            if (transfer.isCancelled || abandon()) && !cancelSent {
                cancelSent = true
                try? cancelMigration()
            }
            let wanted = (transfer.downtimeLimitMs.load(ordering: .relaxed), transfer.maxBandwidth.load(ordering: .relaxed))
            if wanted != applied, !cancelSent {
                try setMigrationParameters(downtimeLimitMs: wanted.0, maxBandwidth: wanted.1)
                applied = wanted
            }
            let terminal = watched.status.map(QEMUMigrationStatus.terminal.contains) ?? false
            guard terminal || ContinuousClock.now - lastReport >= .milliseconds(100) else { continue }
            let info = try qmp.execute("query-migrate")
            var stats = TransferStats(queryMigrate: info)
            lastReport = .now
            if stats.status == "active", stats.dirtySyncCount >= maxPasses, !pausedHere, !cancelSent,
                (try? runState()) == "running"
            {
                try pause()
                pausedHere = true
            }
            if stats.status == "completed", stats.totalTimeMs == 0 {
                // QEMU announces completion before it has computed total-time and downtime (7.2
                // runs migration_calculate_complete after the state change, microseconds later):
                // ask again at once, a few times, for up to 200 ms in all.
                for _ in 0..<400 where stats.totalTimeMs == 0 {
                    usleep(500)
                    stats = TransferStats(queryMigrate: try qmp.execute("query-migrate"))
                }
            }
            stats.parkedGuest = pausedHere
            progress(stats)
            switch stats.status {
            case "completed": return stats
            case "failed": throw QEMUError.migrationFailed(reason: info["error-desc"]?.stringValue ?? "QEMU gave no reason")
            case "cancelled": throw QEMUError.migrationCancelled
            default:
                if let deadline, ContinuousClock.now > deadline {
                    try? cancelMigration()
                    throw QEMUError.timedOut("waiting for the migration to finish")
                }
            }
        }
    }

    /// Waits (after a failed start or a cancel) until QEMU has no transfer running, so the next
    /// one can begin; bounded, since QEMU itself ends a cancelled transfer promptly.
    func settleMigration() {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, process.exit == nil {
            guard let status = try? migrationStats().status, !QEMUMigrationStatus.terminal.contains(status),
                status != "none"
            else { return }
            _ = transferWatch.wait(upTo: .milliseconds(100))
        }
    }
}
