import EmulatorCore
import Foundation
import Logging
import RISCV
import Synchronization

/// Creating, changing and deleting guests, and their lifecycle: start (from a managed save when
/// there is one), pause, resume, stop, reset, console input, and the report of a machine that
/// ended by itself. Each change holds only its own guest's lock; some wait on the guest's CPU
/// thread or read a file, so callers run them off any thread that must stay responsive.
public final class GuestLifecycle: Sendable {
    public enum Action: String, CaseIterable, Sendable {
        case start, pause, resume, stop, reset

        public var summary: String {
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

    /// Up to what the virt board maps (VirtMachine.maximumMemoryMiB), so a created guest can start.
    public static let memoryRange = 16...VirtMachine.maximumMemoryMiB

    let registry: GuestRegistry
    let tasks: TaskManager
    let quotas: Quotas
    let logger: Logger
    /// Reports of machines that ended by themselves, counted once handled (replaced machines'
    /// too): what a test waits on to know a late report has landed.
    let exitReports = Atomic<Int>(0)

    init(registry: GuestRegistry, tasks: TaskManager, quotas: Quotas, logger: Logger) {
        self.registry = registry
        self.tasks = tasks
        self.quotas = quotas
        self.logger = logger
    }

    private var store: GuestStore { registry.store }
    private var events: EventBus { registry.events }

    // MARK: Records

    /// Creates a stopped guest; an image with a disk gets its own (`diskSizeBytes`, or the
    /// image's size), made before the record so a guest never names a disk it lacks.
    public func create(
        name: String, image imageID: String, machineType: String, memoryMiB: Int, icount: Bool,
        backend kind: Backend = .builtin, binary: String? = nil, diskSizeBytes: Int64? = nil
    ) throws -> GuestRecord {
        try Names.validate(name, what: "guest")
        let image = try registry.images.image(imageID)
        let backend = try registry.backends(kind)
        let placement = try backend.place(machineType: machineType, binary: binary, image: image)
        guard !icount || kind == .builtin else {
            throw PanelError(
                .invalid, code: "invalid_clock", message: "the deterministic clock (icount) is the built-in core's; QEMU guests run on real time")
        }
        try Self.checkMemory(memoryMiB, image: image, range: backend.memoryRange)
        try quotas.checkGuest(memoryMiB: memoryMiB)
        // An image with a disk boots only on the built-in core (ImageCatalog.Image.backends).
        let diskSize = try Self.diskSize(diskSizeBytes, image: image) { try registry.machines.resolve(placement.machineType) }
        if (try? store.all())?.contains(where: { $0.name == name }) == true {
            throw PanelError(.conflict, code: "name_taken", message: "a guest named '\(name)' exists")
        }
        let now = Date()
        var guest = GuestRecord(
            id: "g-" + UUID().uuidString.lowercased().prefix(8), name: name, image: image.id,
            machineType: placement.machineType, memoryMiB: memoryMiB, state: .stopped, icount: icount,
            resumeAtStart: false, pausedAtSave: false, currentSnapshot: nil, createdAt: now, updatedAt: now,
            backend: kind, binary: placement.binary)
        do {
            if let template = image.disk, let diskSize {
                guest.disks = try registry.diskFiles(guest.id).create(template, sizeBytes: diskSize)
            }
            try store.insert(guest)
        } catch {
            try? FileManager.default.removeItem(atPath: registry.guestDirectory(guest.id))
            if let error = error as? PanelError { throw error }
            throw PanelError(.invalid, code: "disk_creation_failed", message: "the guest's disk could not be made: \(error)")
        }
        events.publish("guest.created", subject: guest.id, data: GuestRegistry.eventData(guest))
        return guest
    }

    /// The size of the disk a new guest of `image` gets, nil for an image without one.
    static func diskSize(_ requested: Int64?, image: ImageCatalog.Image, machineType: () throws -> MachineType) throws -> Int64? {
        guard let template = image.disk else {
            guard requested == nil else {
                throw PanelError(.invalid, code: "invalid_disk_size", message: "image '\(image.id)' has no disk to size")
            }
            return nil
        }
        let machineType = try machineType()
        guard VirtMachineTypes.driveSlots(in: machineType) > 0 else {
            throw PanelError(
                .invalid, code: "machine_type_without_disks",
                message: "image '\(image.id)' boots from a virtio disk, which \(machineType.name) lacks: use virt-1.2 or newer (or the alias virt)")
        }
        let size = requested ?? template.sizeBytes
        guard DiskTemplate.sizes.contains(size), size % (1 << 20) == 0 else {
            throw PanelError(
                .invalid, code: "invalid_disk_size",
                message:
                    "diskSizeBytes must be whole MiB from \(DiskTemplate.sizes.lowerBound >> 20) MiB to \(DiskTemplate.sizes.upperBound >> 30) GiB")
        }
        return size
    }

    public func patch(_ id: String, name: String?, memoryMiB: Int?, icount: Bool?) throws -> GuestRecord {
        if let name { try Names.validate(name, what: "guest") }
        let guest = try registry.withLifecycle(id) { _ in
            let current = try store.get(id)
            if memoryMiB != nil || icount != nil {
                guard current.state == .stopped else {
                    throw PanelError.invalidState("memory and clock change only while the guest is stopped (it is \(current.state.rawValue))")
                }
            }
            if icount == true, current.backend != .builtin {
                throw PanelError(
                    .invalid, code: "invalid_clock", message: "the deterministic clock (icount) is the built-in core's; QEMU guests run on real time")
            }
            if let memoryMiB {
                try Self.checkMemory(
                    memoryMiB, image: try registry.images.image(current.image),
                    range: try registry.backend(of: current).memoryRange)
                try quotas.checkGuest(memoryMiB: memoryMiB, changing: id)
            }
            return try store.update(id) { guest in
                if let name { guest.name = name }
                if let memoryMiB { guest.memoryMiB = memoryMiB }
                if let icount { guest.icount = icount }
            }
        }
        events.publish("guest.updated", subject: id, data: GuestRegistry.eventData(guest))
        return guest
    }

    public func delete(_ id: String) throws {
        try registry.withLifecycle(id) { _ in
            let guest = try store.get(id)
            guard guest.state == .stopped || guest.state == .migrated else {
                throw PanelError.invalidState("stop the guest before deleting it (it is \(guest.state.rawValue))")
            }
            guard !tasks.isBusy(guestId: id) else {
                throw PanelError(.conflict, code: "guest_busy", message: "guest \(id) has a task running")
            }
            try registry.remove(guest)
        }
    }

    static func checkMemory(_ memoryMiB: Int, image: ImageCatalog.Image, range backendRange: ClosedRange<Int>) throws {
        let range = max(backendRange.lowerBound, image.minimumMemoryMiB)...max(backendRange.upperBound, image.minimumMemoryMiB)
        guard range.contains(memoryMiB) else {
            throw PanelError(
                .invalid, code: "invalid_memory",
                message: "memoryMiB must be \(range.lowerBound)...\(range.upperBound) for image '\(image.id)'")
        }
    }

    // MARK: Lifecycle

    public func perform(_ action: Action, on id: String) throws -> GuestRecord {
        try registry.withLifecycle(id) { slot in
            let guest = try store.get(id)
            if guest.state == .handoverUnknown {
                throw PanelError(
                    .conflict, code: "handover_unknown",
                    message:
                        "guest \(guest.name) may run on \(guest.peer ?? "another host"), whose answer to its hand-over was lost: settle that first (POST /guests/\(id)/resolve)"
                )
            }
            guard action.allowedFrom.contains(guest.state) else {
                throw PanelError.invalidState("cannot \(action.rawValue) a guest that is \(guest.state.rawValue)")
            }
            guard !tasks.isBusy(guestId: id) else {
                throw PanelError(.conflict, code: "guest_busy", message: "guest \(id) has a task running; wait or cancel it")
            }
            // The record tells the truth whatever fails: a change that cannot be recorded (a full
            // disk) is undone on the machine, and one that cannot be undone is recorded first.
            switch action {
            case .start:
                return try start(guest)
            case .pause:
                let runtime = try registry.runtime(id)
                try runtime.pause()
                do {
                    return try registry.setState(id, .paused)
                } catch {
                    try? runtime.resume()
                    throw error
                }
            case .resume:
                let runtime = try registry.runtime(id)
                try runtime.resume()
                do {
                    return try registry.setState(id, .running)
                } catch {
                    try? runtime.pause()
                    throw error
                }
            case .stop:
                let runtime = try registry.runtime(id)
                let stopped = try registry.setState(id, .stopped)
                registry.register(nil, for: id)
                runtime.stop()
                return stopped
            case .reset:
                try registry.runtime(id).reset()
                events.publish("guest.reset", subject: id, data: GuestRegistry.eventData(guest))
                return guest
            }
        }
    }

    /// Builds the guest's machine, loads its managed save if the record names one, and starts it
    /// (parked, when it was saved paused); the caller holds the guest's lifecycle lock.
    ///
    /// The order never loses the saved state: the file is loaded and checked, then one write
    /// records the guest started and the save consumed, and only then is the file removed. A crash
    /// before that write finds the save still named; after it, a stale file (named by nothing) is
    /// removed at the next start.
    func start(_ guest: GuestRecord) throws -> GuestRecord {
        let id = guest.id
        let runtime = try makeRuntime(for: guest)
        let saved = registry.managedSavePath(id)
        let state: GuestState = guest.managedSave != nil && guest.pausedAtSave ? .paused : .running
        if let checksum = guest.managedSave {
            guard FileManager.default.fileExists(atPath: saved) else {
                try forgetManagedSave(of: id)
                throw PanelError(
                    .conflict, code: "saved_state_missing",
                    message: "the state saved at the last shutdown is missing (\(saved)); the guest was not started, and the next start boots afresh")
            }
            do {
                try runtime.load(fromFile: saved, expectedChecksum: checksum == GuestRecord.uncheckedSave ? nil : checksum)
            } catch {
                // E.g. an unversioned type whose state a new release refuses (SPEC §1), or a damaged
                // file: say so once, keep the file for the user, and let the next start boot afresh.
                let aside = saved + ".rejected"
                try? FileManager.default.removeItem(atPath: aside)
                try? FileManager.default.moveItem(atPath: saved, toPath: aside)
                try forgetManagedSave(of: id)
                throw PanelError(
                    .invalid, code: "saved_state_rejected",
                    message:
                        "the state saved at the last shutdown does not load (\(error)); it was kept as \((aside as NSString).lastPathComponent) and the next start boots afresh"
                )
            }
        } else {
            try runtime.prepare()
        }
        // Recorded before the CPU starts: a guest that powers off at once reports it after this.
        let started = try store.update(id) { guest in
            guest.state = state
            guest.resumeAtStart = false
            guest.pausedAtSave = false
            guest.managedSave = nil
        }
        events.publish("guest.state", subject: id, data: GuestRegistry.eventData(started))
        if guest.managedSave != nil {
            do {
                try FileManager.default.removeItem(atPath: saved)
            } catch {
                logger.warning(
                    "could not remove a consumed managed save; the next start removes it", metadata: ["guest": "\(guest.name)", "error": "\(error)"])
            }
        }
        registry.register(runtime, for: id)
        // A guest saved paused comes back parked before its first instruction.
        try registry.startRegistered(runtime, for: id, paused: state == .paused)
        return started
    }

    private func forgetManagedSave(of id: String) throws {
        try store.update(id) {
            $0.managedSave = nil; $0.resumeAtStart = false; $0.pausedAtSave = false
        }
    }

    /// The guest's machine, its disks' tops plugged in (`disks` instead of the record's: a restore's fresh overlays).
    func makeRuntime(for guest: GuestRecord, disks: [GuestDisk]? = nil) throws -> any GuestRuntime {
        let image = try registry.images.image(guest.image)
        return try registry.backend(of: guest).makeRuntime(
            for: guest, image: image, drives: registry.diskFiles(guest.id).drives(disks ?? guest.disks),
            console: registry.slot(guest.id).console,
            reports: reports(for: guest.id))
    }

    /// Where a guest's machine reports what it did by itself.
    private func reports(for id: String) -> RuntimeReports {
        RuntimeReports(
            exited: { [weak self] exit in self?.guestExited(id, exit) },
            runStateChanged: { [weak self] runtime in self?.runStateChanged(id, runtime) },
            event: { [weak self] type, data in
                guard let self, let guest = try? store.get(id) else { return }
                events.publish(type, subject: id, data: GuestRegistry.eventData(guest, extra: data))
            })
    }

    /// The guest powered off (finisher) or failed: it is stopped now — if the machine that ended is
    /// still the guest's. A machine a restore replaced may report its end after the swap, and must
    /// not take the fresh one's place in the books (its CPU thread would run on, orphaned).
    func guestExited(_ id: String, _ exit: RuntimeExit) {
        defer { exitReports.add(1, ordering: .releasing) }
        // Under the guest's lock, so it lands after whatever action started the guest.
        registry.withLifecycle(id) { _ in
            guard let ended = exit.runtime, registry.unregister(id, ifStill: ended) else { return }
            do {
                let guest = try store.update(id) { $0.state = .stopped }
                events.publish(
                    "guest.state", subject: id,
                    data: GuestRegistry.eventData(
                        guest,
                        extra: [
                            "reason": .string(exit.reason), "instructions": .number(Double(exit.instructions)),
                        ]))
            } catch {
                logger.error("could not record that a guest stopped", metadata: ["guest": "\(id)", "error": "\(error)"])
            }
        }
    }

    /// The machine paused or resumed by itself (QEMU's STOP and RESUME that the panel did not ask
    /// for: a guest panic, an I/O error): the record follows what the machine says now — unless a
    /// task is under way, which records its own outcome, or the machine is no longer the guest's.
    func runStateChanged(_ id: String, _ runtime: any GuestRuntime) {
        registry.withLifecycle(id) { _ in
            guard registry.isRegistered(runtime, for: id), !tasks.isBusy(guestId: id),
                let guest = try? store.get(id), guest.state == .running || guest.state == .paused,
                let running = runtime.runsNow
            else { return }
            let state: GuestState = running ? .running : .paused
            guard state != guest.state else { return }
            do {
                try registry.setState(id, state)
            } catch {
                logger.error("could not record a guest's run state", metadata: ["guest": "\(id)", "error": "\(error)"])
            }
        }
    }

    // MARK: Console

    /// At most this much input in one request.
    public static let maximumInput = 4096

    public func type(_ bytes: [UInt8], into id: String) throws {
        guard bytes.count <= Self.maximumInput else {
            throw PanelError(.tooLarge, code: "input_too_large", message: "send at most \(Self.maximumInput) bytes of console input at once")
        }
        let guest = try store.get(id)
        guard guest.state == .running || guest.state == .paused, let runtime = try? registry.runtime(id) else {
            throw PanelError.invalidState("the guest is \(guest.state.rawValue); start it to type")
        }
        guard runtime.type(bytes) else {
            throw PanelError(
                .conflict, code: "input_full",
                message: "the guest has not read the last \(SerialConsole.inputCapacity >> 10) KiB of input yet (is it paused?)")
        }
    }
}
