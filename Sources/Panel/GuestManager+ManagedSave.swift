import Foundation
import Migration

/// Managed save (libvirt's term): stopping the panel saves every started guest to a file and the
/// next start resumes it, so restarting emupanel loses nothing.
extension GuestManager {
    /// Saves and stops every started guest; called after the HTTP server stopped.
    public func shutdown() {
        let started = runtimes.withLock { runtimes in
            defer { runtimes.removeAll() }
            return runtimes
        }
        for (id, runtime) in started {
            guard let guest = try? store.get(id) else { runtime.stop(); continue }
            do {
                runtime.pause()
                let path = managedSavePath(id)!
                let transfer = TransferControl()
                _ = try SnapshotFile.write(to: path) { sink in
                    _ = try runtime.machine.streamState(to: ThrottledSink(sink, transfer: transfer), transfer: transfer) { _ in }
                }
                runtime.stop()
                try store.update(id) { $0.state = .stopped; $0.resumeAtStart = true; $0.pausedAtSave = guest.state == .paused }
                logger.info("saved guest for the next start", metadata: ["guest": "\(guest.name)"])
            } catch {
                runtime.stop()
                _ = try? store.update(id) { $0.state = .stopped; $0.resumeAtStart = false }
                logger.error("could not save guest at shutdown; it was stopped", metadata: ["guest": "\(guest.name)", "error": "\(error)"])
            }
        }
    }

    /// Deletes the temporary files of snapshots and managed saves that a crash interrupted; the
    /// tasks that wrote them are already marked failed ("interrupted") by the task manager.
    public func removeInterruptedWrites() {
        for guest in (try? store.all()) ?? [] {
            for directory in [guestDirectory(guest.id), guestDirectory(guest.id) + "/snapshots"] {
                for name in SnapshotFile.removeInterruptedWrites(in: directory) {
                    logger.warning("removed the file of an interrupted write", metadata: ["guest": "\(guest.name)", "file": "\(name)"])
                }
            }
        }
    }

    /// Removes the records of migrations that were still coming in when the panel stopped: the
    /// guest never ran here and its source still has it; the record would only hold its name.
    public func discardIncomingReservations() {
        for guest in (try? store.all()) ?? [] where guest.incoming {
            do {
                try remove(guest)
                logger.warning("removed an unfinished incoming migration", metadata: ["guest": "\(guest.name)"])
            } catch {
                logger.error("could not remove an unfinished incoming migration", metadata: ["guest": "\(guest.name)", "error": "\(error)"])
            }
        }
    }

    /// Starts guests saved at the last shutdown; guests the database still calls running or paused
    /// without a save (the panel was killed) are marked stopped.
    public func resumeManagedSaves() {
        for guest in (try? store.all()) ?? [] {
            if guest.resumeAtStart {
                do {
                    _ = try perform(.start, on: guest.id)
                    if guest.pausedAtSave { _ = try perform(.pause, on: guest.id) }
                    try store.update(guest.id) { $0.resumeAtStart = false; $0.pausedAtSave = false }
                } catch {
                    _ = try? store.update(guest.id) { $0.resumeAtStart = false }
                    logger.error("could not resume saved guest", metadata: ["guest": "\(guest.name)", "error": "\(error)"])
                }
            } else if guest.state == .running || guest.state == .paused || guest.state == .migrating {
                _ = try? setState(guest.id, .stopped)
            }
        }
    }
}

extension GuestManager {
    /// A first start finds one guest ready to start: U-Boot when Debian's firmware is installed,
    /// else the memory-pattern test guest.
    func createDemoGuestIfEmpty() {
        guard (try? store.all())?.isEmpty == true else { return }
        let image = images.images.first { $0.id == "uboot" && $0.available } ?? images.images.first { $0.available }
        guard let image, let type = machines.machineTypes.first(where: { $0.alias != nil }) ?? machines.machineTypes.first else { return }
        _ = try? create(name: "demo", image: image.id, machineType: type.name, memoryMiB: image.defaultMemoryMiB, icount: false)
    }
}
