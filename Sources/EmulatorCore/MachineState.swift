// The machine's migratable state in one place: its registered devices and RAM.
// It writes complete QEVM streams (snapshots, or live migration driven by the
// caller's dirty-page sets) and reads them back all-or-nothing: device state is
// applied only after the whole stream has been read and checked.
import VMState

public final class MachineState {
    public let machineType: MachineType
    public let ramBlocks: [RAMBlock]
    private var registered: [String: Registered] = [:]

    private struct Registered {
        let spec: DeviceSpec
        let description: AnyVMStateDescription?
        let get: () -> Any
        let set: (Any) -> Void
    }

    public init(machineType: MachineType, ramBlocks: [RAMBlock]) {
        self.machineType = machineType
        self.ramBlocks = ramBlocks
    }

    /// Registers the device built for board slot `id`. This is where a device whose
    /// state no description covers is refused: QEMU would drop that state silently.
    public func register<D: Device>(_ device: D, id: String) throws {
        guard let spec = machineType.device(id) else {
            throw MachineError.unknownDevice(machineType: machineType.name, id: id)
        }
        guard spec.driver == D.driver, spec.stateTypeID == ObjectIdentifier(D.State.self) else {
            throw MachineError.deviceDriverMismatch(id: id, expected: spec.driver, actual: D.driver)
        }
        guard registered[id] == nil else { throw MachineError.deviceAlreadyRegistered(id: id) }
        let problems = D.registrationProblems()
        var description: AnyVMStateDescription?
        switch D.migration {
        case .stateless where D.State.self != NoState.self:
            throw MachineError.statefulWithoutDescription(driver: D.driver, stateType: String(describing: D.State.self))
        case .vmstate(let typed):
            guard problems.isEmpty else { throw MachineError.invalidDevice(machineType: machineType.name, problems: problems) }
            let uncovered = typed.uncoveredProperties(of: device.state)
            guard uncovered.isEmpty else { throw MachineError.unmigratedState(driver: D.driver, properties: uncovered) }
            description = AnyVMStateDescription(typed)
        default:
            break
        }
        registered[id] = Registered(
            spec: spec, description: description, get: { device.state },
            set: { if let state = $0 as? D.State { device.state = state } })
    }

    /// The properties of device `id` on this machine type (compat applied).
    public func properties(of id: String) throws -> DeviceProperties { try machineType.properties(of: id) }

    /// One entry per stateful device, in the machine type's device order; instance ids
    /// count per section name in that order, as QEMU numbers instances.
    public func saveStateEntries() throws -> [SaveStateEntry] {
        let missing = machineType.devices.map(\.id).filter { registered[$0] == nil }
        guard missing.isEmpty else { throw MachineError.devicesMissing(machineType: machineType.name, ids: missing) }
        var instances: [String: UInt32] = [:]
        return machineType.devices.compactMap { spec in
            guard let device = registered[spec.id], let description = device.description else { return nil }
            let instance = instances[description.name, default: 0]
            instances[description.name] = instance + 1
            return SaveStateEntry(instanceID: instance, description: description, get: device.get, set: device.set)
        }
    }

    /// Refuses up front when the machine type is tier `none`, listing every blocker.
    public func checkMigratable() throws {
        let blockers = machineType.blockers
        guard blockers.isEmpty else { throw MachineError.notMigratable(machineType: machineType.name, blockers: blockers) }
    }

    /// A complete snapshot of a stopped guest: every page once (or only `pages`, when the
    /// others are known to be zero), then every device.
    @discardableResult
    public func saveSnapshot(to sink: ByteSink, pages: RAMPageBitmap? = nil) throws -> RAMTransferStats {
        let migration = try startMigration(to: sink)
        return try migration.complete(remainingDirtyPages: pages ?? .all(pageCount: migration.ramPageCount))
    }

    /// Starts a live migration: header, configuration and the RAM block list go out now;
    /// the caller then sends iterations and completes once the guest is stopped.
    public func startMigration(to sink: ByteSink) throws -> OutgoingMigration {
        try checkMigratable()
        let entries = try saveStateEntries()
        let writer = QEVMStreamWriter(sink: sink)
        try writer.writeHeader(machineType: machineType.name)
        try writer.beginRAM(ramBlocks)
        return OutgoingMigration(writer: writer, entries: entries)
    }

    /// For snapshot files: checks the VMDESCRIPTION found in the file's last bytes against
    /// this machine before anything is loaded, so even guest RAM stays untouched when a
    /// device section would be refused. Streams without one pass (the load still checks).
    public func preflight(snapshotTail: [UInt8]) throws {
        try checkMigratable()
        guard let description = QEVMPreflight.vmDescription(inTail: snapshotTail) else { return }
        if let problem = QEVMPreflight.problems(vmDescription: description, entries: try saveStateEntries()).first {
            throw problem
        }
    }

    /// Reads a stream into this machine. RAM pages land directly in guest memory;
    /// devices change only if the whole stream was valid.
    @discardableResult
    public func load(from source: ByteSource, limits: QEVMStreamLimits = QEVMStreamLimits()) throws -> RAMTransferStats {
        try checkMigratable()
        // A large buffer: the reader backs runs of pages with host memory as far ahead as it has read.
        let reader = QEVMStreamReader(
            source: source, machineType: machineType.name, ramBlocks: ramBlocks,
            entries: try saveStateEntries(), limits: limits, bufferSize: 256 << 10)
        let pending = try reader.read()
        pending.commit()
        return pending.ramStats
    }
}

/// The sending side of one stream, driven by the caller's migration loop.
public final class OutgoingMigration {
    private let writer: QEVMStreamWriter
    private let entries: [SaveStateEntry]
    private var completed = false

    init(writer: QEVMStreamWriter, entries: [SaveStateEntry]) {
        self.writer = writer
        self.entries = entries
    }

    /// RAM counters so far (query-migrate's normal / duplicate / transferred).
    public var ramStats: RAMTransferStats { writer.ramStats }
    /// Every byte written so far, framing included.
    public var bytesWritten: UInt64 { writer.file.bytesWritten }

    /// Pages of all RAM blocks, as `RAMPageBitmap` numbers them.
    public var ramPageCount: Int { writer.ramPageCount }

    /// One precopy pass over the pages dirtied since the last one (the first pass: all).
    public func iterate<Pages: Sequence>(dirtyPages: Pages) throws where Pages.Element == RAMPage {
        precondition(!completed, "iterate after complete")
        try writer.writeRAMIteration(dirtyPages)
        try writer.file.flush()
    }

    /// One section with the pages of `dirtyPages` inside `range`: a stretch of a pass.
    public func iterate(dirtyPages: RAMPageBitmap, in range: Range<Int>) throws {
        precondition(!completed, "iterate after complete")
        try writer.writeRAMIteration(dirtyPages, in: range)
        try writer.file.flush()
    }

    /// With the guest stopped: the last dirty pages, every device, EOF, VMDESCRIPTION.
    @discardableResult
    public func complete<Pages: Sequence>(remainingDirtyPages: Pages) throws -> RAMTransferStats
    where Pages.Element == RAMPage {
        try complete { try $0.endRAM(remainingDirtyPages) }
    }

    @discardableResult
    public func complete(remainingDirtyPages: RAMPageBitmap) throws -> RAMTransferStats {
        try complete { try $0.endRAM(remainingDirtyPages) }
    }

    private func complete(endingRAM endRAM: (QEVMStreamWriter) throws -> Void) throws -> RAMTransferStats {
        precondition(!completed, "complete called twice")
        completed = true
        try endRAM(writer)
        for entry in entries { try writer.writeDevice(entry) }
        try writer.finish()
        return writer.ramStats
    }
}
