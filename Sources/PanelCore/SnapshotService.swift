import Block
import EmulatorCore
import Foundation
import Migration
import VMState

/// Snapshots: one QEVM file each, written live (the guest pauses only for the last dirty pages
/// and the devices), restored into a fresh machine that replaces the running one only on success.
/// Taking and restoring run as tasks; the file and its record are written so that a crash leaves
/// either both or neither.
public final class SnapshotService: Sendable {
    let registry: GuestRegistry
    let lifecycle: GuestLifecycle
    let tasks: TaskManager

    init(registry: GuestRegistry, lifecycle: GuestLifecycle, tasks: TaskManager) {
        self.registry = registry
        self.lifecycle = lifecycle
        self.tasks = tasks
    }

    private var store: GuestStore { registry.store }
    private var snapshots: SnapshotStore { registry.snapshots }
    private var events: EventBus { registry.events }

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
            throw PanelError(.invalid, code: "invalid_description", message: "descriptions are at most 1000 characters")
        }
        // Checked, looked up and reserved for the task under the guest's lock: no action or exit slips in between.
        return try registry.withLifecycle(id) { _ in
            let guest = try store.get(id)
            try registry.backend(of: guest).refuseIfUnmigratable(guest, action: "snapshot")
            guard let runtime = registry.registeredRuntime(of: guest) else {
                throw PanelError.invalidState("start the guest to snapshot it (it is \(guest.state.rawValue))")
            }
            if (try? snapshots.get(guestId: id, name: name)) != nil {
                throw PanelError(.conflict, code: "name_taken", message: "guest \(guest.name) has a snapshot named '\(name)'")
            }
            try lifecycle.quotas.checkSnapshot(of: guest)
            return try tasks.start(kind: "snapshot", guestId: id) { [self] handle in
                try writeSnapshot(name, description: description, of: guest, runtime: runtime, handle: handle)
            }
        }
    }

    private func writeSnapshot(
        _ name: String, description: String, of guest: GuestRecord,
        runtime: any GuestRuntime, handle: TaskHandle
    ) throws -> JSON {
        let id = guest.id
        let path = registry.snapshotPath(id, name: name)
        let transfer = TransferControl(downtimeLimitMs: 50)
        handle.onCancel { transfer.cancelled.store(true, ordering: .relaxed) }
        let started = Date()
        // External disk snapshots: the guest's tops are frozen at the instant its last state is
        // taken, and it goes on in new overlays over them (libvirt's --disk-only layout).
        let disks = try store.get(id).disks
        let freeze = try DiskFreeze(files: registry.diskFiles(id), disks: disks)
        var recorded = false
        defer {
            freeze.settle()
            // A freeze that happened stays whatever failed after it: the machine writes the new tops.
            if freeze.happened && !recorded { registry.recordTops(freeze.next, of: id) }
        }
        // The task names its snapshot from the start: a restart that finds the task interrupted
        // and the snapshot recorded knows the work was done (Recovery.reconcileTasks).
        handle.progress(0, detail: ["snapshot": .string(name)])
        let saved = try runtime.saveSnapshot(to: path, transfer: transfer, diskFreeze: disks.isEmpty ? nil : freeze) { stats in
            var detail = stats.queryMigrate(under: transfer)
            if case .object(var fields) = detail { fields["snapshot"] = .string(name); detail = .object(fields) }
            handle.progress(stats.progress * 0.95, detail: detail)
        }
        let (written, final) = (saved.file, saved.stats)
        handle.log("wrote \((path as NSString).lastPathComponent): \(written.sizeBytes) bytes, checksum \(written.checksum)")
        if !disks.isEmpty {
            let pairs = zip(freeze.frozen, freeze.next).map { (old: GuestDisk, new: GuestDisk) -> String in
                "\(old.id): \(old.overlay), new overlay \(new.overlay)"
            }
            handle.log("froze " + pairs.joined(separator: "; "))
        }
        var record = SnapshotRecord(
            guestId: id, name: name, parent: guest.currentSnapshot, description: description,
            machineType: guest.machineType, release: Release.current, sizeBytes: written.sizeBytes,
            checksum: written.checksum, file: (path as NSString).lastPathComponent, createdAt: started)
        record.disks = freeze.frozen.map { SnapshotDisk(id: $0.id, overlay: $0.overlay) }
        do {
            // One transaction: the record exists exactly when the guest descends from it and writes the new tops.
            try snapshots.insert(record, current: true, guestDisks: freeze.happened ? freeze.next : nil)
            recorded = true
        } catch {
            unlink(path)
            throw error
        }
        events.publish(
            "snapshot.created", subject: id,
            data: ["guestId": .string(id), "name": .string(name), "sizeBytes": .number(Double(written.sizeBytes))])
        return [
            "name": .string(name), "snapshot": .string(name), "sizeBytes": .number(Double(written.sizeBytes)),
            "pauseMs": .number(Double(final.downtimeMs ?? 0)), "checksum": .string(written.checksum),
            "transfer": final.queryMigrate(under: transfer),
        ]
    }

    /// Restores a snapshot: the file's checksum and every device section are checked, the state is
    /// loaded into a fresh machine, and only then does it replace the guest's machine. A stopped
    /// guest starts running from the snapshot; a paused one stays paused.
    public func restoreSnapshot(_ id: String, name: String) throws -> TaskInfo {
        // Checked and reserved for the task under the guest's lock, like the other tasks.
        try registry.withLifecycle(id) { _ in
            let guest = try store.get(id)
            let record = try snapshots.get(guestId: id, name: name)
            guard record.machineType == guest.machineType else {
                throw PanelError(
                    .invalid, code: "machine_type_mismatch",
                    message: "snapshot '\(name)' holds a \(record.machineType) machine; the guest is \(guest.machineType)")
            }
            try registry.backend(of: guest).refuseIfUnmigratable(guest, action: "restore")
            guard guest.state != .migrating, guest.state != .migrated else {
                throw PanelError.invalidState("cannot restore a guest that is \(guest.state.rawValue)")
            }
            return try tasks.start(kind: "restore", guestId: id) { [self] handle in
                try restore(record, into: guest, handle: handle)
            }
        }
    }

    private func restore(_ record: SnapshotRecord, into guest: GuestRecord, handle: TaskHandle) throws -> JSON {
        let (id, name) = (guest.id, record.name)
        let files = registry.diskFiles(id)
        let current = try store.get(id).disks
        // A fresh overlay over each layer the snapshot froze: the snapshot's layers are never written.
        let frozen = current.map { disk in record.disks.first { $0.id == disk.id }?.overlay ?? disk.overlay }
        let tops = record.disks.isEmpty ? current : try files.startOverlays(current, over: frozen)
        var replaced = false
        defer { if !replaced && !record.disks.isEmpty { files.remove(tops.map { (disk: GuestDisk) in disk.overlay }) } }
        let fresh = try lifecycle.makeRuntime(for: guest, disks: tops)
        handle.log("loading snapshot '\(name)' into a fresh machine, checking its checksum on the way")
        if !record.disks.isEmpty {
            let pairs = zip(tops, frozen).map { (top: GuestDisk, layer: String) -> String in "\(top.id): new overlay \(top.overlay) over \(layer)" }
            handle.log("disks: " + pairs.joined(separator: "; "))
        }
        handle.progress(0.1)
        // The running machine is paused while the snapshot loads, as QEMU's loadvm and libvirt's
        // revert stop the guest first: its state is being replaced, and its CPU took the host's from
        // the load (a restore on QEMU took 1.3x QEMU's own). It runs on if the load fails.
        let running = guest.state == .running ? registry.registeredRuntime(of: guest) : nil
        let pausedHere = running.map { (try? $0.pause()) != nil } ?? false
        do {
            // Hashed while it loads; the fresh machine replaces nothing until both succeeded.
            try fresh.load(fromFile: registry.snapshotPath(id, name: name), expectedChecksum: record.checksum)
        } catch {
            if pausedHere, let running, registry.isRegistered(running, for: id) { try? running.resume() }
            if let error = error as? SnapshotFileError, error.isChecksumMismatch {
                throw PanelError(
                    .invalid, code: "snapshot_corrupt",
                    message: "snapshot '\(name)' does not match its recorded checksum; it was not applied")
            }
            throw error
        }
        handle.progress(0.9)
        try registry.withLifecycle(id) { _ in
            let current = try store.get(id)
            let old = registry.register(fresh, for: id)
            // A stop ends it without an exit report; one it sent already names the old machine and is
            // ignored. A parked machine without disks ends off the task's path once the task is
            // recorded (~5 ms for a QEMU); one with disks closes them first, before their layers
            // are collected below.
            if let old, pausedHere || guest.state == .paused, record.disks.isEmpty, current.disks.isEmpty {
                let registry = registry
                handle.afterFinish { registry.endDetached(old, threadName: "emupanel-replaced") }
            } else {
                old?.stop()
            }
            replaced = true
            let state: GuestState = current.state == .paused ? .paused : .running
            try registry.startRegistered(fresh, for: id, paused: state == .paused)
            let restored = try store.update(id) {
                $0.currentSnapshot = name; $0.state = state; $0.disks = tops
            }
            events.publish("guest.state", subject: id, data: GuestRegistry.eventData(restored))
        }
        if !record.disks.isEmpty {
            // The tops left behind held what the guest wrote since: a restore discards it, as libvirt's revert does.
            registry.collectDiskLayersLogged(of: id)
        }
        events.publish("snapshot.restored", subject: id, data: ["guestId": .string(id), "name": .string(name)])
        return ["name": .string(name)]
    }

    public func updateSnapshotDescription(_ id: String, name: String, description: String) throws -> SnapshotView {
        guard description.count <= 1000 else {
            throw PanelError(.invalid, code: "invalid_description", message: "descriptions are at most 1000 characters")
        }
        let guest = try store.get(id)
        let record = try snapshots.updateDescription(guestId: id, name: name, description: description)
        events.publish("snapshot.updated", subject: id, data: ["guestId": .string(id), "name": .string(name)])
        return SnapshotView(record, current: name == guest.currentSnapshot)
    }

    public func deleteSnapshot(_ id: String, name: String) throws {
        try registry.withLifecycle(id) { _ in
            _ = try store.get(id)
            guard !tasks.isBusy(guestId: id) else {
                throw PanelError(.conflict, code: "guest_busy", message: "guest \(id) has a task running")
            }
            let record = try snapshots.delete(guestId: id, name: name)
            unlink(registry.guestDirectory(id) + "/snapshots/" + record.file)
            // Its frozen layers go, or are streamed into their only child, unless another image still needs them.
            if !record.disks.isEmpty { try registry.collectDiskLayers(of: id) }
        }
        events.publish("snapshot.deleted", subject: id, data: ["guestId": .string(id), "name": .string(name)])
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
        case name, parent, description, machineType, release, sizeBytes, checksum, createdAt, current, disks
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
        try container.encode(record.disks, forKey: .disks)
    }
}
