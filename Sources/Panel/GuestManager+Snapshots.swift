import EmulatorCore
import Foundation
import HTTPServer
import Migration
import VMState

/// Snapshots: one QEVM file each, written live (the guest pauses only for the last dirty pages
/// and the devices), restored into a fresh machine that replaces the running one only on success.
extension GuestManager {
    public func listSnapshots(_ id: String) throws -> [SnapshotView] {
        let guest = try store.get(id)
        return try snapshots.all(guestId: id).map { SnapshotView($0, current: $0.name == guest.currentSnapshot) }
    }

    public func snapshot(_ id: String, name: String) throws -> SnapshotView {
        let guest = try store.get(id)
        return SnapshotView(try snapshots.get(guestId: id, name: name), current: name == guest.currentSnapshot)
    }

    public func takeSnapshot(_ id: String, name: String, description: String) throws -> TaskInfo {
        try Names.validate(name, what: "snapshot")
        guard description.count <= 1000 else {
            throw HTTPError(.unprocessableEntity, code: "invalid_description", message: "descriptions are at most 1000 characters")
        }
        // Checked, looked up and reserved for the task under `lifecycle`: no action or exit slips in between.
        return try lifecycle.withLock { _ in
            let guest = try store.get(id)
            let type = try resolve(guest.machineType)
            try refuseIfUnmigratable(type, action: "snapshot")
            guard let runtime = registeredRuntime(of: guest) else {
                throw HTTPError(.conflict, code: "invalid_state", message: "start the guest to snapshot it (it is \(guest.state.rawValue))")
            }
            if (try? snapshots.get(guestId: id, name: name)) != nil {
                throw HTTPError(.conflict, code: "name_taken", message: "guest \(guest.name) has a snapshot named '\(name)'")
            }
            return try tasks.start(kind: "snapshot", guestId: id) { [self] handle in
                try writeSnapshot(name, description: description, of: guest, type: type, runtime: runtime, handle: handle)
            }
        }
    }

    private func writeSnapshot(_ name: String, description: String, of guest: GuestRecord, type: MachineType,
                               runtime: GuestRuntime, handle: TaskHandle) throws -> JSON {
        let id = guest.id
        let path = snapshotPath(id, name: name)
        let transfer = TransferControl(downtimeLimitMs: 50)
        handle.onCancel { transfer.cancelled.store(true, ordering: .relaxed) }
        let started = Date()
        var final = TransferStats()
        let written = try SnapshotFile.write(to: path) { sink in
            let throttled = ThrottledSink(sink, transfer: transfer)
            let stats = try runtime.machine.streamState(to: throttled, transfer: transfer, precopy: .snapshot) { stats in
                handle.progress(stats.progress * 0.95, detail: Self.statsJSON(stats))
            }
            final = stats
            // A guest that powered off meanwhile left only its last moment: no snapshot to keep.
            guard runtime.machine.isRunning else { throw GuestEnded(during: "snapshot") }
            // A running guest ran on once its last state was held in memory (Precopy.snapshot), unless
            // there was too much to hold: then it is parked until here. One that was paused stays paused.
            if stats.parkedGuest { runtime.resume() }
        }
        let record = SnapshotRecord(guestId: id, name: name, parent: guest.currentSnapshot, description: description,
                                    machineType: type.name, release: Release.current, sizeBytes: written.sizeBytes,
                                    checksum: written.checksum, file: (path as NSString).lastPathComponent, createdAt: started)
        do {
            try snapshots.insert(record)
            try store.update(id) { $0.currentSnapshot = name }
        } catch {
            unlink(path)
            throw error
        }
        events.publish("snapshot.created", subject: id,
                       data: ["guestId": .string(id), "name": .string(name), "sizeBytes": .number(Double(written.sizeBytes))])
        return ["name": .string(name), "sizeBytes": .number(Double(written.sizeBytes)),
                "pauseMs": .number(Double(final.downtimeMs ?? 0)), "checksum": .string(written.checksum),
                "transfer": Self.statsJSON(final)]
    }

    /// Restores a snapshot: the file's checksum and every device section are checked, the state is
    /// loaded into a fresh machine, and only then does it replace the guest's machine. A stopped
    /// guest starts running from the snapshot; a paused one stays paused.
    public func restoreSnapshot(_ id: String, name: String) throws -> TaskInfo {
        // Checked and reserved for the task under `lifecycle`, like the other tasks.
        try lifecycle.withLock { _ in
            let guest = try store.get(id)
            let record = try snapshots.get(guestId: id, name: name)
            guard record.machineType == guest.machineType else {
                throw HTTPError(.unprocessableEntity, code: "machine_type_mismatch",
                                message: "snapshot '\(name)' holds a \(record.machineType) machine; the guest is \(guest.machineType)")
            }
            let type = try resolve(guest.machineType)
            try refuseIfUnmigratable(type, action: "restore")
            guard guest.state != .migrating, guest.state != .migrated else {
                throw HTTPError(.conflict, code: "invalid_state", message: "cannot restore a guest that is \(guest.state.rawValue)")
            }
            return try tasks.start(kind: "restore", guestId: id) { [self] handle in
                try restore(record, into: guest, handle: handle)
            }
        }
    }

    private func restore(_ record: SnapshotRecord, into guest: GuestRecord, handle: TaskHandle) throws -> JSON {
        let (id, name) = (guest.id, record.name)
        let fresh = try makeRuntime(for: guest)
        handle.progress(0.1)
        do {
            // Hashed while it loads; the fresh machine replaces nothing until both succeeded.
            try fresh.restore(fromFile: snapshotPath(id, name: name), expectedChecksum: record.checksum)
        } catch let error as SnapshotFileError where error.isChecksumMismatch {
            throw HTTPError(.unprocessableEntity, code: "snapshot_corrupt",
                            message: "snapshot '\(name)' does not match its recorded checksum; it was not applied")
        }
        handle.progress(0.9)
        try lifecycle.withLock { _ in
            let current = try store.get(id)
            let old = runtimes.withLock { runtimes -> GuestRuntime? in
                let old = runtimes[id]
                runtimes[id] = fresh
                return old
            }
            // A stop ends it without an exit report; one it sent already names the old machine and is ignored.
            old?.stop()
            let state: GuestState = current.state == .paused ? .paused : .running
            if state == .paused { fresh.machine.control.pause() }
            fresh.start()
            try store.update(id) { $0.currentSnapshot = name }
            try setState(id, state)
        }
        events.publish("snapshot.restored", subject: id, data: ["guestId": .string(id), "name": .string(name)])
        return ["name": .string(name)]
    }

    public func updateSnapshotDescription(_ id: String, name: String, description: String) throws -> SnapshotView {
        guard description.count <= 1000 else {
            throw HTTPError(.unprocessableEntity, code: "invalid_description", message: "descriptions are at most 1000 characters")
        }
        let guest = try store.get(id)
        let record = try snapshots.updateDescription(guestId: id, name: name, description: description)
        events.publish("snapshot.updated", subject: id, data: ["guestId": .string(id), "name": .string(name)])
        return SnapshotView(record, current: name == guest.currentSnapshot)
    }

    public func deleteSnapshot(_ id: String, name: String) throws {
        _ = try store.get(id)
        guard !tasks.isBusy(guestId: id) else {
            throw HTTPError(.conflict, code: "guest_busy", message: "guest \(id) has a task running")
        }
        let record = try snapshots.delete(guestId: id, name: name)
        unlink(guestDirectory(id) + "/snapshots/" + record.file)
        events.publish("snapshot.deleted", subject: id, data: ["guestId": .string(id), "name": .string(name)])
    }

    func refuseIfUnmigratable(_ type: MachineType, action: String) throws {
        guard type.tier == .none else { return }
        throw HTTPError(.unprocessableEntity, code: "not_migratable",
                        message: "\(type.name) cannot \(action): " + type.blockers.map(\.description).joined(separator: "; "))
    }

    func snapshotPath(_ id: String, name: String) -> String {
        guestDirectory(id) + "/snapshots/" + name + ".qevm"
    }

    static func statsJSON(_ stats: TransferStats) -> JSON {
        var object: [String: JSON] = [
            "status": .string(stats.status),
            "total-time": .number(Double(stats.totalTimeMs)),
            "setup-time": .number(Double(stats.setupTimeMs)),
            "expected-downtime": .number(Double(stats.expectedDowntimeMs)),
            "cpu-throttle-percentage": .number(stats.cpuThrottlePercentage),
            "ram": [
                "transferred": .number(Double(stats.transferred)),
                "remaining": .number(Double(stats.remaining)),
                "total": .number(Double(stats.total)),
                "duplicate": .number(Double(stats.duplicate)),
                "normal": .number(Double(stats.normal)),
                "normal-bytes": .number(Double(stats.normal * 4096)),
                "dirty-pages-rate": .number(Double(stats.dirtyPagesRate)),
                "mbps": .number((stats.mbps * 100).rounded() / 100),
                "dirty-sync-count": .number(Double(stats.dirtySyncCount)),
            ],
        ]
        if let downtime = stats.downtimeMs { object["downtime"] = .number(Double(downtime)) }
        return .object(object)
    }
}

/// A snapshot as the API shows it: the record plus whether the guest's state descends from it.
public struct SnapshotView: Encodable, Sendable {
    public var record: SnapshotRecord
    public var current: Bool

    init(_ record: SnapshotRecord, current: Bool) {
        self.record = record
        self.current = current
    }

    enum CodingKeys: String, CodingKey {
        case name, parent, description, machineType, release, sizeBytes, checksum, createdAt, current
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(record.name, forKey: .name)
        try container.encode(record.parent, forKey: .parent)
        try container.encode(record.description, forKey: .description)
        try container.encode(record.machineType, forKey: .machineType)
        try container.encode(record.release, forKey: .release)
        try container.encode(record.sizeBytes, forKey: .sizeBytes)
        try container.encode(record.checksum, forKey: .checksum)
        try container.encode(record.createdAt, forKey: .createdAt)
        try container.encode(current, forKey: .current)
    }
}

