import Foundation
import Logging
import Migration

/// What the panel does when it starts and stops, so a restart loses nothing (libvirt's managed
/// save): at stop every started guest is saved to a file and the next start resumes it; at start
/// whatever a crash left behind is cleaned up, and each thing found is logged.
public final class Recovery: Sendable {
    let registry: GuestRegistry
    let lifecycle: GuestLifecycle
    let logger: Logger

    init(registry: GuestRegistry, lifecycle: GuestLifecycle, logger: Logger) {
        self.registry = registry
        self.lifecycle = lifecycle
        self.logger = logger
    }

    private var store: GuestStore { registry.store }

    /// Every guest record, or none with the reason logged: recovery goes on with what it can read.
    private func allGuests(_ step: String) -> [GuestRecord] {
        do {
            return try store.all()
        } catch {
            logger.error("could not read the guests to \(step)", metadata: ["error": "\(error)"])
            return []
        }
    }

    // MARK: Stop

    /// Saves and stops every started guest; called after the HTTP server stopped and the tasks ended.
    public func saveAll() {
        for (id, runtime) in registry.takeAllRuntimes() {
            guard let guest = try? store.get(id) else { runtime.stop(); continue }
            do {
                runtime.pause()
                let path = registry.managedSavePath(id)
                let transfer = TransferControl()
                _ = try SnapshotFile.write(to: path) { sink in
                    _ = try runtime.machine.streamState(to: ThrottledSink(sink, transfer: transfer), transfer: transfer) { _ in }
                }
                runtime.stop()
                try store.update(id) { $0.state = .stopped; $0.resumeAtStart = true; $0.pausedAtSave = guest.state == .paused }
                logger.info("saved guest for the next start", metadata: ["guest": "\(guest.name)"])
            } catch {
                runtime.stop()
                do {
                    try store.update(id) { $0.state = .stopped; $0.resumeAtStart = false }
                } catch {
                    logger.error("could not record a guest stopped at shutdown", metadata: ["guest": "\(guest.name)", "error": "\(error)"])
                }
                logger.error("could not save guest at shutdown; it was stopped", metadata: ["guest": "\(guest.name)", "error": "\(error)"])
            }
        }
    }

    // MARK: Start

    /// Everything a start does before it takes changes, in order.
    public func recover(createDemoGuest: Bool) {
        discardIncomingReservations()
        removeInterruptedWrites()
        resumeManagedSaves()
        if createDemoGuest { createDemoGuestIfEmpty() }
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

    /// Removes the records of migrations that were still coming in when the panel stopped: the
    /// guest never ran here and its source still has it; the record would only hold its name.
    func discardIncomingReservations() {
        for guest in allGuests("forget unfinished incoming migrations") where guest.incoming {
            do {
                try registry.remove(guest)
                logger.warning("removed an unfinished incoming migration", metadata: ["guest": "\(guest.name)"])
            } catch {
                logger.error("could not remove an unfinished incoming migration", metadata: ["guest": "\(guest.name)", "error": "\(error)"])
            }
        }
    }

    /// Starts guests saved at the last shutdown; guests the database still calls running or paused
    /// without a save (the panel was killed) are marked stopped.
    func resumeManagedSaves() {
        for guest in allGuests("resume saved guests") {
            if guest.resumeAtStart {
                do {
                    _ = try lifecycle.perform(.start, on: guest.id)
                    if guest.pausedAtSave { _ = try lifecycle.perform(.pause, on: guest.id) }
                    try store.update(guest.id) { $0.resumeAtStart = false; $0.pausedAtSave = false }
                } catch {
                    logger.error("could not resume saved guest", metadata: ["guest": "\(guest.name)", "error": "\(error)"])
                    do {
                        try store.update(guest.id) { $0.resumeAtStart = false }
                    } catch {
                        logger.error("could not record that a saved guest was not resumed", metadata: ["guest": "\(guest.name)", "error": "\(error)"])
                    }
                }
            } else if guest.state == .running || guest.state == .paused || guest.state == .migrating {
                logger.warning("a guest the last run left \(guest.state.rawValue) without a saved state is stopped",
                               metadata: ["guest": "\(guest.name)"])
                do {
                    try registry.setState(guest.id, .stopped)
                } catch {
                    logger.error("could not record a guest stopped", metadata: ["guest": "\(guest.name)", "error": "\(error)"])
                }
            }
        }
    }

    /// A first start finds one guest ready to start: U-Boot when Debian's firmware is installed,
    /// else the memory-pattern test guest.
    func createDemoGuestIfEmpty() {
        guard allGuests("create the demo guest").isEmpty else { return }
        let images = registry.images.images
        let image = images.first { $0.id == "uboot" && $0.available } ?? images.first { $0.available }
        let machines = registry.machines.machineTypes
        guard let image, let type = machines.first(where: { $0.alias != nil }) ?? machines.first else { return }
        do {
            _ = try lifecycle.create(name: "demo", image: image.id, machineType: type.name, memoryMiB: image.defaultMemoryMiB, icount: false)
        } catch {
            logger.error("could not create the demo guest", metadata: ["error": "\(error)"])
        }
    }
}
