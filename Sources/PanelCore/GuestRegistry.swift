import EmulatorCore
import Foundation
import Logging
import Synchronization

/// Guests by id: their records (SQLite), the machine of each started guest, its console, and a
/// lock per guest that serialises that guest's lifecycle changes. Slow work for one guest (a start
/// that loads a saved state, a stop that waits for its CPU thread) holds only that guest's lock;
/// the registry's own lock is held just long enough to find a guest's slot.
public final class GuestRegistry: Sendable {
    let store: GuestStore
    let snapshots: SnapshotStore
    let images: ImageCatalog
    let machines: MachineRegistry
    /// What runs guests: each guest's record names its backend.
    let backends: GuestBackends
    let events: EventBus
    let dataDir: String
    let logger: Logger

    /// What the panel holds for one guest besides its record.
    final class Slot: Sendable {
        /// Held for a whole lifecycle change of this guest: an action, a task's check and
        /// reservation, the report of its machine's end.
        let lifecycle = Mutex<Void>(())
        /// The machine of a running or paused guest; read without waiting for a change in progress.
        let runtime = Mutex<(any GuestRuntime)?>(nil)
        let console = ConsoleBuffer()
    }

    private let slots = Mutex<[String: Slot]>([:])
    /// Machines `endDetached` is ending; a stopping panel waits for them.
    private let ending = DispatchGroup()

    init(
        database: PanelDatabase, images: ImageCatalog, machines: MachineRegistry, backends: GuestBackends, events: EventBus,
        dataDir: String, logger: Logger
    ) {
        store = GuestStore(database: database)
        snapshots = SnapshotStore(database: database)
        self.images = images
        self.machines = machines
        self.backends = backends
        self.events = events
        self.dataDir = dataDir
        self.logger = logger
    }

    // MARK: Records

    public func list() throws -> [GuestRecord] { try store.all() }

    public func get(_ id: String) throws -> GuestRecord { try store.get(id) }

    /// The guest's serial output, kept while the panel runs.
    public func console(_ id: String) throws -> ConsoleBuffer {
        _ = try store.get(id)
        return slot(id).console
    }

    /// The backend that runs `guest`.
    func backend(of guest: GuestRecord) throws -> any GuestBackend { try backends(guest.backend) }

    @discardableResult
    func setState(_ id: String, _ state: GuestState) throws -> GuestRecord {
        let guest = try store.update(id) { $0.state = state }
        events.publish("guest.state", subject: id, data: Self.eventData(guest))
        return guest
    }

    /// The record, the files and the console of a guest that has no machine, announced.
    func remove(_ guest: GuestRecord) throws {
        try store.delete(guest.id)
        do {
            try FileManager.default.removeItem(atPath: guestDirectory(guest.id))
        } catch CocoaError.fileNoSuchFile {
        } catch {
            logger.warning("could not remove a deleted guest's files", metadata: ["guest": "\(guest.name)", "error": "\(error)"])
        }
        _ = slots.withLock { $0.removeValue(forKey: guest.id) }
        events.publish("guest.deleted", subject: guest.id, data: Self.eventData(guest))
    }

    // MARK: Slots

    func slot(_ id: String) -> Slot {
        slots.withLock { slots in
            if let slot = slots[id] { return slot }
            let slot = Slot()
            slots[id] = slot
            return slot
        }
    }

    /// Runs `body` holding the guest's lifecycle lock: no other change of this guest, and no
    /// report of its machine's end, lands in between. Other guests are not held up.
    func withLifecycle<T: Sendable, E: Error>(_ id: String, _ body: (Slot) throws(E) -> T) throws(E) -> T {
        let slot = slot(id)
        return try slot.lifecycle.withLock { _ throws(E) in try body(slot) }
    }

    /// The machine of a started guest, or a conflict naming why there is none.
    func runtime(_ id: String) throws -> any GuestRuntime {
        guard let runtime = slot(id).runtime.withLock({ $0 }) else {
            throw PanelError.invalidState("guest \(id) is not running")
        }
        return runtime
    }

    /// The machine of a running or paused guest, for a task to work on; the caller holds its lifecycle lock.
    func registeredRuntime(of guest: GuestRecord) -> (any GuestRuntime)? {
        guard guest.state == .running || guest.state == .paused else { return nil }
        return slot(guest.id).runtime.withLock { $0 }
    }

    /// Makes `runtime` the guest's machine; returns the one it replaces.
    @discardableResult
    func register(_ runtime: (any GuestRuntime)?, for id: String) -> (any GuestRuntime)? {
        slot(id).runtime.withLock { current in
            defer { current = runtime }
            return current
        }
    }

    /// Runs the guest's registered `runtime` (parked before its first instruction when `paused`);
    /// one that will not run (a QEMU that refuses `cont`) is taken off the books, ended and recorded
    /// stopped. The caller holds the guest's lifecycle lock.
    func startRegistered(_ runtime: any GuestRuntime, for id: String, paused: Bool) throws {
        do {
            try runtime.start(paused: paused)
        } catch {
            _ = unregister(id, ifStill: runtime)
            runtime.stop()
            do {
                _ = try setState(id, .stopped)
            } catch let recording {
                logger.error("could not record guest \(id) stopped after its machine would not run", metadata: ["error": "\(recording)"])
            }
            throw error
        }
    }

    /// Ends a parked machine nobody holds any more on a thread of its own: a QEMU's `quit` and exit
    /// take milliseconds no task needs to wait for (a migrated-out or a replaced guest's machine).
    /// The machine's processes run at the least CPU priority meanwhile: on a busy host their exit
    /// (freeing the guest's memory) took CPU from the task's last event on its way to the client
    /// and from the guests that run on. (Not this thread: threads it made, libdispatch's among
    /// them, would inherit its nice value and run the panel's work at it.)
    func endDetached(_ runtime: any GuestRuntime, threadName: String) {
        let ending = ending
        ending.enter()
        let thread = Thread {
            runtime.lowerPriority()
            runtime.stop()
            ending.leave()
        }
        thread.name = threadName
        thread.start()
    }

    /// Waits up to `timeout` seconds for the machines `endDetached` is ending; false if some did not end.
    public func waitForEndedMachines(timeout: Double) -> Bool {
        ending.wait(timeout: .now() + timeout) == .success
    }

    /// Whether `runtime` is the machine registered for the guest now.
    func isRegistered(_ runtime: any GuestRuntime, for id: String) -> Bool {
        slot(id).runtime.withLock { $0 === runtime }
    }

    /// Drops the guest's machine from the books only if it is `runtime`; true if it was.
    func unregister(_ id: String, ifStill runtime: any GuestRuntime) -> Bool {
        slot(id).runtime.withLock { current in
            guard current === runtime else { return false }
            current = nil
            return true
        }
    }

    /// Every registered machine, taken out of the books (the panel is stopping).
    func takeAllRuntimes() -> [(id: String, runtime: any GuestRuntime)] {
        let all = slots.withLock { Array($0) }
        return all.compactMap { id, slot in
            slot.runtime.withLock { current in
                defer { current = nil }
                return current.map { (id, $0) }
            }
        }
    }

    // MARK: Files

    func guestDirectory(_ id: String) -> String { Self.guestDirectory(id, dataDir: dataDir) }

    static func guestDirectory(_ id: String, dataDir: String) -> String { dataDir + "/guests/" + id }

    func managedSavePath(_ id: String) -> String { guestDirectory(id) + "/managed-save.qevm" }

    func snapshotPath(_ id: String, name: String) -> String { guestDirectory(id) + "/snapshots/" + name + ".qevm" }

    func diskFiles(_ id: String) -> GuestDiskFiles { GuestDiskFiles(guestDirectory: guestDirectory(id)) }

    static func eventData(_ guest: GuestRecord, extra: [String: JSON] = [:]) -> JSON {
        var data: [String: JSON] = [
            "id": .string(guest.id), "name": .string(guest.name), "state": .string(guest.state.rawValue),
            "machineType": .string(guest.machineType), "guestId": .string(guest.id), "backend": .string(guest.backend.rawValue),
        ]
        data.merge(extra) { $1 }
        return .object(data)
    }
}
