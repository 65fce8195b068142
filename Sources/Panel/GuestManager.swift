import EmulatorCore
import Foundation
import HTTPServer
import Logging
import RISCV
import Synchronization

/// Guests: records in SQLite, a running machine per started guest (each on its own thread),
/// a console buffer per guest, and every state change announced as an event.
public final class GuestManager: Sendable {
    public enum Action: String, CaseIterable, Sendable {
        case start, pause, resume, stop, reset

        var summary: String {
            switch self {
            case .start: "Start a stopped guest (from its managed save if it has one)"
            case .pause: "Pause a running guest"
            case .resume: "Resume a paused guest"
            case .stop: "Stop a running or paused guest (its state is discarded)"
            case .reset: "Reset a running or paused guest, as the reset button would"
            }
        }

        /// States the action may start from.
        var allowedFrom: Set<GuestState> {
            switch self {
            case .start: [.stopped]
            case .pause: [.running]
            case .resume: [.paused]
            case .stop, .reset: [.running, .paused]
            }
        }
    }

    let store: GuestStore
    let snapshots: SnapshotStore
    let images: ImageCatalog
    let machines: MachineRegistry
    let events: EventBus
    let tasks: TaskManager
    let dataDir: String
    let peers: [PanelConfiguration.Peer]
    let logger: Logger

    /// Machines of running and paused guests.
    let runtimes = Mutex<[String: GuestRuntime]>([:])
    private let consoles = Mutex<[String: ConsoleBuffer]>([:])
    /// Serialises lifecycle changes; the work under it is short (a thread starts or is told to stop).
    let lifecycle = Mutex<Void>(())
    /// Names of guests a ticket was handed out for and that have not arrived or failed yet.
    let incomingNames = Mutex<Set<String>>([])
    /// At most this many migrations come in at once: each holds a port and a thread.
    static let maximumIncoming = 4

    /// Up to what the virt board maps (VirtMachine.maximumMemoryMiB), so a created guest can start.
    public static let memoryRange = 16...VirtMachine.maximumMemoryMiB
    /// A migration's downtime limit (ms) and bandwidth limit (bytes/s, 0 = unlimited).
    static let downtimeLimits: ClosedRange<UInt64> = 1...60_000
    static let bandwidthLimits: ClosedRange<UInt64> = 0...1_000_000_000_000_000

    init(database: PanelDatabase, images: ImageCatalog, machines: MachineRegistry, events: EventBus, tasks: TaskManager,
         configuration: PanelConfiguration, logger: Logger) {
        store = GuestStore(database: database)
        snapshots = SnapshotStore(database: database)
        self.images = images
        self.machines = machines
        self.events = events
        self.tasks = tasks
        dataDir = configuration.dataDir
        peers = configuration.peers
        self.logger = logger
    }

    // MARK: Records

    public func list() throws -> [GuestRecord] { try store.all() }

    public func get(_ id: String) throws -> GuestRecord { try store.get(id) }

    public func create(name: String, image imageID: String, machineType: String, memoryMiB: Int, icount: Bool) throws -> GuestRecord {
        try Names.validate(name, what: "guest")
        let image = try images.image(imageID)
        let type = try resolve(machineType)
        try checkMemory(memoryMiB, image: image)
        let now = Date()
        let guest = GuestRecord(id: "g-" + UUID().uuidString.lowercased().prefix(8), name: name, image: image.id,
                                machineType: type.name, memoryMiB: memoryMiB, state: .stopped, icount: icount,
                                resumeAtStart: false, pausedAtSave: false, currentSnapshot: nil, createdAt: now, updatedAt: now)
        try store.insert(guest)
        events.publish("guest.created", subject: guest.id, data: Self.eventData(guest))
        return guest
    }

    public func patch(_ id: String, name: String?, memoryMiB: Int?, icount: Bool?) throws -> GuestRecord {
        if let name { try Names.validate(name, what: "guest") }
        let current = try store.get(id)
        if memoryMiB != nil || icount != nil {
            guard current.state == .stopped else {
                throw HTTPError(.conflict, code: "invalid_state", message: "memory and clock change only while the guest is stopped (it is \(current.state.rawValue))")
            }
        }
        if let memoryMiB { try checkMemory(memoryMiB, image: try images.image(current.image)) }
        let guest = try store.update(id) { guest in
            if let name { guest.name = name }
            if let memoryMiB { guest.memoryMiB = memoryMiB }
            if let icount { guest.icount = icount }
        }
        events.publish("guest.updated", subject: id, data: Self.eventData(guest))
        return guest
    }

    public func delete(_ id: String) throws {
        try lifecycle.withLock { _ in
            let guest = try store.get(id)
            guard guest.state == .stopped || guest.state == .migrated else {
                throw HTTPError(.conflict, code: "invalid_state", message: "stop the guest before deleting it (it is \(guest.state.rawValue))")
            }
            guard !tasks.isBusy(guestId: id) else {
                throw HTTPError(.conflict, code: "guest_busy", message: "guest \(id) has a task running")
            }
            try remove(guest)
        }
    }

    /// The record, the files and the console of a guest that has no machine, announced.
    func remove(_ guest: GuestRecord) throws {
        try store.delete(guest.id)
        try? FileManager.default.removeItem(atPath: guestDirectory(guest.id))
        forgetConsole(of: guest.id)
        events.publish("guest.deleted", subject: guest.id, data: Self.eventData(guest))
    }

    func resolve(_ machineType: String) throws -> MachineType {
        do {
            return try machines.resolve(machineType)
        } catch {
            throw HTTPError(.unprocessableEntity, code: "unknown_machine_type",
                            message: "unknown machine type '\(machineType)'; known: \(machines.machineTypes.map(\.name).joined(separator: ", "))")
        }
    }

    private func checkMemory(_ memoryMiB: Int, image: ImageCatalog.Image) throws {
        let range = max(Self.memoryRange.lowerBound, image.minimumMemoryMiB)...Self.memoryRange.upperBound
        guard range.contains(memoryMiB) else {
            throw HTTPError(.unprocessableEntity, code: "invalid_memory",
                            message: "memoryMiB must be \(range.lowerBound)...\(range.upperBound) for image '\(image.id)'")
        }
    }

    // MARK: Lifecycle

    public func perform(_ action: Action, on id: String) throws -> GuestRecord {
        try lifecycle.withLock { _ in
            let guest = try store.get(id)
            guard action.allowedFrom.contains(guest.state) else {
                throw HTTPError(.conflict, code: "invalid_state",
                                message: "cannot \(action.rawValue) a guest that is \(guest.state.rawValue)")
            }
            guard !tasks.isBusy(guestId: id) else {
                throw HTTPError(.conflict, code: "guest_busy", message: "guest \(id) has a task running; wait or cancel it")
            }
            switch action {
            case .start:
                let runtime = try makeRuntime(for: guest)
                if let saved = managedSavePath(id), FileManager.default.fileExists(atPath: saved) {
                    do {
                        try runtime.restore(fromFile: saved)
                    } catch {
                        // E.g. an unversioned type whose state a new release refuses (SPEC §1): say so
                        // once, keep the file for the user, and let the next start boot afresh.
                        let aside = saved + ".rejected"
                        try? FileManager.default.removeItem(atPath: aside)
                        try? FileManager.default.moveItem(atPath: saved, toPath: aside)
                        throw HTTPError(.unprocessableEntity, code: "saved_state_rejected",
                                        message: "the state saved at the last shutdown does not load (\(error)); it was kept as \((aside as NSString).lastPathComponent) and the next start boots afresh")
                    }
                    try? FileManager.default.removeItem(atPath: saved)
                }
                runtimes.withLock { $0[id] = runtime }
                // The state is recorded before the CPU starts: a guest that powers off at once
                // reports it after this, never before.
                let running = try setState(id, .running)
                runtime.start()
                return running
            case .pause:
                try runtime(id).pause()
                return try setState(id, .paused)
            case .resume:
                try runtime(id).resume()
                return try setState(id, .running)
            case .stop:
                let runtime = try runtime(id)
                runtimes.withLock { _ = $0.removeValue(forKey: id) }
                runtime.stop()
                return try setState(id, .stopped)
            case .reset:
                try runtime(id).reset()
                events.publish("guest.reset", subject: id, data: Self.eventData(guest))
                return guest
            }
        }
    }

    func runtime(_ id: String) throws -> GuestRuntime {
        guard let runtime = runtimes.withLock({ $0[id] }) else {
            throw HTTPError(.conflict, code: "invalid_state", message: "guest \(id) is not running")
        }
        return runtime
    }

    func makeRuntime(for guest: GuestRecord) throws -> GuestRuntime {
        let image = try images.image(guest.image)
        let type = try resolve(guest.machineType)
        return try GuestRuntime(guest: guest, image: image, machineType: type, console: console(guest.id)) { [weak self] exit in
            self?.guestExited(guest.id, exit)
        }
    }

    /// The guest powered off (finisher) or failed: it is stopped now — if the machine that ended is
    /// still the guest's. A machine a restore replaced may report its end after the swap, and must
    /// not take the fresh one's place in the books (its CPU thread would run on, orphaned).
    func guestExited(_ id: String, _ exit: GuestRuntime.Exit) {
        // Under the lifecycle lock, so it lands after whatever action started the guest.
        lifecycle.withLock { _ in
            guard let ended = exit.runtime, unregister(id, ifStill: ended) else { return }
            if let guest = try? store.update(id, { $0.state = .stopped }) {
                events.publish("guest.state", subject: id, data: Self.eventData(guest, extra: [
                    "reason": .string(exit.reason), "instructions": .number(Double(exit.instructions)),
                ]))
            }
        }
    }

    /// The machine of a running or paused guest, for a task to work on; the caller holds `lifecycle`.
    func registeredRuntime(of guest: GuestRecord) -> GuestRuntime? {
        guard guest.state == .running || guest.state == .paused else { return nil }
        return runtimes.withLock { $0[guest.id] }
    }

    /// Whether `runtime` is the machine registered for the guest now.
    func isRegistered(_ runtime: GuestRuntime, for id: String) -> Bool {
        runtimes.withLock { $0[id] === runtime }
    }

    /// Drops the guest's machine from the books only if it is `runtime`; true if it was.
    func unregister(_ id: String, ifStill runtime: GuestRuntime) -> Bool {
        runtimes.withLock { runtimes in
            guard runtimes[id] === runtime else { return false }
            runtimes.removeValue(forKey: id)
            return true
        }
    }

    @discardableResult
    func setState(_ id: String, _ state: GuestState) throws -> GuestRecord {
        let guest = try store.update(id) { $0.state = state }
        events.publish("guest.state", subject: id, data: Self.eventData(guest))
        return guest
    }

    // MARK: Console

    public func console(_ id: String) throws -> ConsoleBuffer {
        _ = try store.get(id)
        return consoles.withLock { consoles in
            if let existing = consoles[id] { return existing }
            let buffer = ConsoleBuffer()
            consoles[id] = buffer
            return buffer
        }
    }

    func forgetConsole(of id: String) {
        _ = consoles.withLock { $0.removeValue(forKey: id) }
    }

    public func type(_ bytes: [UInt8], into id: String) throws {
        guard bytes.count <= 4096 else {
            throw HTTPError(.payloadTooLarge, code: "input_too_large", message: "send at most 4096 bytes of console input at once")
        }
        let guest = try store.get(id)
        guard guest.state == .running || guest.state == .paused, let runtime = runtimes.withLock({ $0[id] }) else {
            throw HTTPError(.conflict, code: "invalid_state", message: "the guest is \(guest.state.rawValue); start it to type")
        }
        guard runtime.type(bytes) else {
            throw HTTPError(.conflict, code: "input_full",
                            message: "the guest has not read the last \(SerialConsole.inputCapacity >> 10) KiB of input yet (is it paused?)")
        }
    }

    // MARK: Files

    func guestDirectory(_ id: String) -> String { dataDir + "/guests/" + id }

    func managedSavePath(_ id: String) -> String? { guestDirectory(id) + "/managed-save.qevm" }

    static func eventData(_ guest: GuestRecord, extra: [String: JSON] = [:]) -> JSON {
        var data: [String: JSON] = [
            "id": .string(guest.id), "name": .string(guest.name), "state": .string(guest.state.rawValue),
            "machineType": .string(guest.machineType), "guestId": .string(guest.id),
        ]
        data.merge(extra) { $1 }
        return .object(data)
    }
}
