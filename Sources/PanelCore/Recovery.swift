import Foundation
import Logging
import Migration
import QEMUBackend
import RISCV
import Synchronization

/// What the panel does when it starts and stops, so a restart loses nothing (libvirt's managed
/// save): at stop every started guest is saved to a file and the next start resumes it; at start
/// whatever a crash left behind is reconciled, each thing found logged and kept as a warning that
/// `GET /host` shows.
public final class Recovery: Sendable {
    let registry: GuestRegistry
    let lifecycle: GuestLifecycle
    let settings: PanelSettings
    let logger: Logger
    private let found = Mutex<[String]>([])

    init(registry: GuestRegistry, lifecycle: GuestLifecycle, settings: PanelSettings, logger: Logger) {
        self.registry = registry
        self.lifecycle = lifecycle
        self.settings = settings
        self.logger = logger
    }

    private var store: GuestStore { registry.store }

    /// What the last start found that a person should know.
    public var warnings: [String] { found.withLock { $0 } }

    private func warn(_ message: String, _ metadata: Logger.Metadata = [:]) {
        logger.warning("\(message)", metadata: metadata)
        found.withLock { $0.append(message) }
    }

    /// Every guest record, or none with the reason logged: recovery goes on with what it can read.
    private func allGuests(_ step: String) -> [GuestRecord] {
        do {
            return try store.all()
        } catch {
            warn("could not read the guests to \(step): \(error)")
            return []
        }
    }

    // MARK: Stop

    /// Saves and stops every started guest; called after the HTTP server stopped and the tasks
    /// and incoming migrations ended. The file is complete before the record names it, and the
    /// machine stops only once both are written: a crash in between leaves the state recoverable.
    public func saveAll() {
        for (id, runtime) in registry.takeAllRuntimes() {
            guard let guest = try? store.get(id) else { runtime.stop(); continue }
            do {
                let written = try runtime.saveForShutdown(to: registry.managedSavePath(id))
                try store.update(id) { record in
                    record.managedSave = written.checksum
                    // A guest whose hand-over is unknown keeps that state: its save waits for the
                    // resolution, and is resumed only if the guest turns out to run here.
                    guard record.state != .handoverUnknown else { return }
                    record.pausedAtSave = record.state == .paused
                    record.state = .stopped
                    record.resumeAtStart = true
                }
                runtime.stop()
                logger.info("saved guest for the next start", metadata: ["guest": "\(guest.name)"])
            } catch {
                runtime.stop()
                do {
                    try store.update(id) {
                        $0.state = .stopped; $0.resumeAtStart = false; $0.managedSave = nil
                    }
                } catch {
                    logger.error("could not record a guest stopped at shutdown", metadata: ["guest": "\(guest.name)", "error": "\(error)"])
                }
                logger.error("could not save guest at shutdown; it was stopped", metadata: ["guest": "\(guest.name)", "error": "\(error)"])
            }
        }
    }

    // MARK: Start

    /// Everything a start does before it takes changes, in order; unknown hand-overs are then
    /// asked about in the background (a dead peer must not hold the start up).
    public func recover(createDemoGuest: Bool, handOvers: HandOvers, tasks: TaskManager) {
        checkDirectories()
        discardIncomingReservations()
        removeInterruptedWrites()
        reconcileFiles()
        reconcileTasks(tasks)
        endOrphanQEMUs()
        resumeManagedSaves()
        if createDemoGuest { createDemoGuestIfEmpty() }
        let unknown = allGuests("find unknown hand-overs").filter { $0.state == .handoverUnknown }
        for guest in unknown {
            warn(
                "guest \(guest.name)'s hand-over to \(guest.peer ?? "another host") is unknown: it will not start here until that host says whether it runs it, or you confirm where it runs"
            )
        }
        if !unknown.isEmpty { handOvers.startResolving() }
    }

    /// Directories the panel reads from: a missing one is worth a word, not a failure.
    func checkDirectories() {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: settings.guestsDir, isDirectory: &isDirectory) || !isDirectory.boolValue {
            warn("the test guests' directory \(settings.guestsDir) is missing: their images are unavailable")
        }
    }

    /// Deletes the temporary files of snapshots and managed saves that a crash interrupted; the
    /// tasks that wrote them are already marked failed ("interrupted") by the task manager.
    func removeInterruptedWrites() {
        for guest in allGuests("remove interrupted writes") {
            for directory in [registry.guestDirectory(guest.id), registry.guestDirectory(guest.id) + "/snapshots"] {
                for name in SnapshotFile.removeInterruptedWrites(in: directory) {
                    logger.warning("removed the file of an interrupted write", metadata: ["guest": "\(guest.name)", "file": "\(name)"])
                }
            }
        }
    }

    /// Records and files agree after any crash: guest directories with no record are reported
    /// (the database may have been replaced), snapshot files with no record removed, snapshot
    /// records with no file removed, managed saves the record does not name removed or — when the
    /// panel died while saving — adopted.
    func reconcileFiles() {
        let guests = allGuests("reconcile files")
        let known = Set(guests.map(\.id))
        let guestsRoot = settings.dataDir + "/guests"
        let directories = (try? FileManager.default.contentsOfDirectory(atPath: guestsRoot)) ?? []
        for directory in directories.sorted() where !known.contains(directory) {
            warn("\(guestsRoot)/\(directory) belongs to no guest the database knows (was the database replaced or deleted?); its files are kept")
        }
        for guest in guests {
            reconcileSnapshots(of: guest)
            reconcileManagedSave(of: guest)
            reconcileDisks(of: guest)
        }
    }

    /// A crash between a disk's freeze and its record, or inside a copy, leaves an overlay no
    /// record names or a temporary file: the overlay is streamed away as a deleted snapshot's
    /// would be (GuestDiskFiles.collect), the temporary file removed. No machine runs yet.
    private func reconcileDisks(of guest: GuestRecord) {
        guard !guest.disks.isEmpty, guest.state != .migrating else { return }
        let files = registry.diskFiles(guest.id)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: files.layout.directory)) ?? []
        for name in names where name.hasPrefix(".") && name.contains("partial") {
            if unlink(files.layout.path(name)) == 0 {
                logger.warning("removed the file of an interrupted disk write", metadata: ["guest": "\(guest.name)", "file": "\(name)"])
            }
        }
        for name in guest.disks.map(\.overlay) where !names.contains(name) {
            warn("the disk \(name) of guest \(guest.name) is missing: the guest cannot start until it is restored from a snapshot")
        }
        do {
            for name in try registry.collectDiskLayers(of: guest.id) {
                logger.warning(
                    "folded a disk layer no record names into its child (the panel stopped between a freeze and its record)",
                    metadata: ["guest": "\(guest.name)", "file": "\(name)"])
            }
        } catch {
            warn("could not tidy the disk layers of guest \(guest.name): \(error)")
        }
    }

    private func reconcileSnapshots(of guest: GuestRecord) {
        let directory = registry.guestDirectory(guest.id) + "/snapshots"
        let records: [SnapshotRecord]
        do {
            records = try registry.snapshots.all(guestId: guest.id)
        } catch {
            warn("could not read the snapshots of guest \(guest.name): \(error)")
            return
        }
        let files = Set((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
        for record in records where !files.contains(record.file) {
            do {
                _ = try registry.snapshots.delete(guestId: guest.id, name: record.name)
                warn("snapshot '\(record.name)' of guest \(guest.name) had lost its file; its record was removed")
            } catch {
                warn("snapshot '\(record.name)' of guest \(guest.name) has lost its file, and its record could not be removed: \(error)")
            }
        }
        let recorded = Set(records.map(\.file))
        for file in files.sorted() where !recorded.contains(file) && !SnapshotFile.isTemporaryName(file) {
            if unlink(directory + "/" + file) == 0 {
                warn("removed \(file) of guest \(guest.name): a snapshot file no record names (the panel stopped before recording it)")
            }
        }
    }

    private func reconcileManagedSave(of guest: GuestRecord) {
        let path = registry.managedSavePath(guest.id)
        guard FileManager.default.fileExists(atPath: path) else {
            if guest.managedSave != nil {
                warn("the saved state of guest \(guest.name) is missing; it stays stopped, and its next start boots afresh")
            }
            return
        }
        guard guest.managedSave == nil else { return }
        if guest.state == .running || guest.state == .paused || guest.resumeAtStart {
            // The panel died after writing the save and before recording it (or the save is from a
            // release that recorded no checksum).
            do {
                try store.update(guest.id) { record in
                    if record.state == .running || record.state == .paused { record.pausedAtSave = record.state == .paused }
                    record.state = .stopped
                    record.resumeAtStart = true
                    record.managedSave = GuestRecord.uncheckedSave
                }
                warn("guest \(guest.name) was saved as the panel stopped, but not recorded: the save is resumed")
            } catch {
                warn("could not adopt the saved state of guest \(guest.name): \(error)")
            }
        } else if unlink(path) == 0 {
            logger.info("removed a managed save no record names (consumed before the panel stopped)", metadata: ["guest": "\(guest.name)"])
        }
    }

    /// A snapshot task the panel stopped during, whose snapshot is recorded (it was killed between
    /// the record and the task's last write), did its work: it is marked so, not failed.
    func reconcileTasks(_ tasks: TaskManager) {
        let interrupted: [TaskInfo]
        do {
            interrupted = try tasks.interrupted()
        } catch {
            warn("could not read the tasks the last run left unfinished: \(error)")
            return
        }
        for task in interrupted where task.kind == "snapshot" {
            guard let guestId = task.guestId, case .string(let name)? = task.detail?["snapshot"],
                (try? registry.snapshots.get(guestId: guestId, name: name)) != nil
            else { continue }
            tasks.settleInterrupted(task.id, note: "finished before the panel stopped; the snapshot is recorded")
            warn("snapshot task \(task.id) was cut short by a stop after its snapshot '\(name)' was recorded: marked succeeded")
        }
    }

    /// Removes the records of migrations that were still coming in when the panel stopped: the
    /// guest never ran here and its source still has it; the record would only hold its name.
    func discardIncomingReservations() {
        for guest in allGuests("forget unfinished incoming migrations") where guest.incoming {
            do {
                try registry.remove(guest)
                logger.warning("removed an unfinished incoming migration", metadata: ["guest": "\(guest.name)"])
            } catch {
                warn("could not remove the unfinished incoming migration of guest \(guest.name): \(error)")
            }
        }
    }

    /// QEMU guests do not outlive the panel (docs/DECISIONS.md): a clean stop saves and quits
    /// them, and the QEMU a killed panel left behind is ended here, before anything starts in its
    /// directory; its guest is then stopped like a built-in guest of a killed panel.
    func endOrphanQEMUs() {
        for guest in allGuests("end QEMUs a killed panel left") where guest.backend == .qemu {
            if QEMUOrphan.quit(in: registry.guestDirectory(guest.id)) {
                warn("the QEMU of guest \(guest.name) was still running after the panel was killed; it was ended")
            }
        }
    }

    /// Starts guests saved at the last shutdown (those saved paused come back parked, before their
    /// first instruction); guests the database still calls running or paused without a save (the
    /// panel was killed) are marked stopped.
    func resumeManagedSaves() {
        for guest in allGuests("resume saved guests") {
            if guest.resumeAtStart, guest.managedSave != nil {
                logger.info("resuming a guest saved at the last stop", metadata: ["guest": "\(guest.name)"])
                do {
                    _ = try registry.withLifecycle(guest.id) { _ in try lifecycle.start(try store.get(guest.id)) }
                } catch {
                    warn("could not resume saved guest \(guest.name): \(error)")
                    do {
                        try store.update(guest.id) { $0.resumeAtStart = false }
                    } catch {
                        logger.error(
                            "could not record that a saved guest was not resumed", metadata: ["guest": "\(guest.name)", "error": "\(error)"])
                    }
                }
            } else if guest.state == .running || guest.state == .paused || guest.state == .migrating {
                warn("guest \(guest.name) was left \(guest.state.rawValue) without a saved state (the panel was killed); it is stopped")
                do {
                    try registry.setState(guest.id, .stopped)
                } catch {
                    logger.error("could not record a guest stopped", metadata: ["guest": "\(guest.name)", "error": "\(error)"])
                }
            }
        }
    }

    /// A first start finds one guest ready to start: the Linux guest when it is built (on the
    /// newest versioned type, the alias's, which has its disk), else U-Boot when Debian's firmware
    /// is installed, else the first test guest.
    func createDemoGuestIfEmpty() {
        guard allGuests("create the demo guest").isEmpty else { return }
        let images = registry.images.images.filter { $0.backends.contains(.builtin) }
        let machines = registry.machines.machineTypes
        let newest = machines.first(where: { $0.alias != nil }) ?? machines.first
        let linux = images.first { $0.id == LinuxImage.id && $0.available }
            .flatMap { newest.map(VirtMachineTypes.driveSlots(in:)) ?? 0 > 0 ? $0 : nil }
        let image = linux ?? images.first { $0.id == "uboot" && $0.available } ?? images.first { $0.available && $0.disk == nil }
        guard let image, let type = newest else { return }
        do {
            _ = try lifecycle.create(name: "demo", image: image.id, machineType: type.name, memoryMiB: image.defaultMemoryMiB, icount: false)
        } catch {
            logger.error("could not create the demo guest", metadata: ["error": "\(error)"])
        }
    }
}
