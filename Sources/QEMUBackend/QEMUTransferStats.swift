// QEMU's `query-migrate` reply as the project's TransferStats (Migration/Precopy.swift):
// the built-in core already reports its transfers with query-migrate's names, so a
// QEMU guest's snapshot or migration fills the same figures, straight from QEMU.
import Migration

extension TransferStats {
    /// Reads `status`, the times and the `ram` figures of a query-migrate reply.
    init(queryMigrate info: QMPValue) {
        self.init()
        status = info["status"]?.stringValue ?? "setup"
        totalTimeMs = info["total-time"]?.uint64Value ?? 0
        setupTimeMs = info["setup-time"]?.uint64Value ?? 0
        downtimeMs = info["downtime"]?.uint64Value
        expectedDowntimeMs = info["expected-downtime"]?.uint64Value ?? 0
        if let ram = info["ram"] {
            transferred = ram["transferred"]?.uint64Value ?? 0
            remaining = ram["remaining"]?.uint64Value ?? 0
            total = ram["total"]?.uint64Value ?? 0
            duplicate = ram["duplicate"]?.uint64Value ?? 0
            normal = ram["normal"]?.uint64Value ?? 0
            dirtyPagesRate = ram["dirty-pages-rate"]?.uint64Value ?? 0
            mbps = ram["mbps"]?.doubleValue ?? 0
            dirtySyncCount = ram["dirty-sync-count"]?.uint64Value ?? 0
        }
        // A pass over RAM ends with a dirty-log sync, so QEMU's count of syncs is its passes.
        iterations = Int(clamping: dirtySyncCount)
    }
}

/// QEMU's migration status values that end a transfer.
enum QEMUMigrationStatus {
    static let terminal: Set<String> = ["completed", "failed", "cancelled"]
}
