import Migration

extension TransferStats {
    /// The figures under QEMU's `query-migrate` names, as task details show them.
    var queryMigrate: JSON {
        var object: [String: JSON] = [
            "status": .string(status),
            "total-time": .number(Double(totalTimeMs)),
            "setup-time": .number(Double(setupTimeMs)),
            "expected-downtime": .number(Double(expectedDowntimeMs)),
            "cpu-throttle-percentage": .number(cpuThrottlePercentage),
            "ram": [
                "transferred": .number(Double(transferred)),
                "remaining": .number(Double(remaining)),
                "total": .number(Double(total)),
                "duplicate": .number(Double(duplicate)),
                "normal": .number(Double(normal)),
                "normal-bytes": .number(Double(normal * 4096)),
                "dirty-pages-rate": .number(Double(dirtyPagesRate)),
                "mbps": .number((mbps * 100).rounded() / 100),
                "dirty-sync-count": .number(Double(dirtySyncCount)),
            ],
        ]
        if let downtime = downtimeMs { object["downtime"] = .number(Double(downtime)) }
        return .object(object)
    }

    /// The figures with the limits in force beside them (QEMU keeps those in
    /// query-migrate-parameters): a result reads against them.
    func queryMigrate(under transfer: TransferControl) -> JSON {
        guard case .object(var object) = queryMigrate else { return queryMigrate }
        object["downtime-limit"] = .number(Double(transfer.downtimeLimitMs.load(ordering: .relaxed)))
        object["max-bandwidth"] = .number(Double(transfer.maxBandwidth.load(ordering: .relaxed)))
        return .object(object)
    }
}
