import Block
import EmulatorCore

// The `virt` machine: RAM, one hart, the devices of VirtMemoryMap, a clock,
// boot conventions of QEMU (a0 = hartid, a1 = device tree), and the slice
// loop that runs the hart and services devices and interrupts between slices.
#if canImport(Glibc)
    import Glibc
#endif

public struct MachineConfiguration: Sendable, Equatable {
    public var memoryMiB: Int = 128
    public var clock: ClockMode = .realtime
    /// Disks, plugged into the board's virtio-mmio transports from the last one down
    /// (QEMU's order for -device virtio-blk-device): the first drive is at 0x10008000, IRQ 8.
    public var drives: [DriveConfiguration] = []
    public init(memoryMiB: Int = 128, clock: ClockMode = .realtime, drives: [DriveConfiguration] = []) {
        self.memoryMiB = memoryMiB
        self.clock = clock
        self.drives = drives
    }
}

/// A disk image given to the machine (QEMU's -drive file=…,format=…,readonly=…).
public struct DriveConfiguration: Sendable, Equatable {
    public enum Format: String, Sendable {
        case qcow2, raw
    }
    public var path: String
    public var format: Format
    public var readOnly: Bool

    public init(path: String, format: Format = .qcow2, readOnly: Bool = false) {
        self.path = path
        self.format = format
        self.readOnly = readOnly
    }

    func open() throws -> any BlockDevice {
        switch format {
        case .qcow2: return try QCOW2Image(path: path, writable: !readOnly)
        case .raw: return try RawImage(path: path, writable: !readOnly)
        }
    }
}

/// Why `VirtMachine.run` returned.
public enum RunExit: Sendable, Equatable {
    case finisherPass
    case finisherFail(code: UInt32)
    case instructionLimit
    case stopped
}

public final class VirtMachine {
    public let configuration: MachineConfiguration
    /// The machine type it was built as: its devices and their properties (compat applied).
    public let machineType: MachineType
    public let ram: GuestRAM
    public let hart: Hart
    let bus: Bus
    let clock: GuestClock
    public private(set) var deviceTree: [UInt8]
    public private(set) var deviceTreeAddress: UInt64 = 0
    /// The command line and initrd /chosen names (`setBootArguments`).
    public private(set) var bootArguments = BootArguments()

    /// Images to place again on reset (finisher 0x7777).
    private var bootImages: [(address: UInt64, bytes: [UInt8], isELF: Bool)] = []
    private var entry: UInt64

    /// Host-side serial connection (input queue and output sink).
    public var console: SerialConsole?

    /// Instructions per slice between checks of devices, interrupts and run
    /// control: ~0.2 ms at 300 MIPS.
    public var sliceLength = 1 << 16

    /// The most RAM the board maps (DRAM from 0x80000000 up to the 32-bit boundary's double).
    public static let maximumMemoryMiB = 2048

    /// Builds `machineType`'s board: the four fixed devices with its properties, plus every
    /// optional bus device its device list names (QEMU's machine init reading the type's options).
    public init(
        configuration: MachineConfiguration = MachineConfiguration(),
        machineType: MachineType = VirtMachineTypes.newest
    ) throws {
        self.configuration = configuration
        self.machineType = machineType
        guard configuration.memoryMiB > 0 && configuration.memoryMiB <= Self.maximumMemoryMiB else {
            throw MachineError.invalidMemorySize(UInt64(clamping: configuration.memoryMiB) << 20)
        }
        let size = UInt64(configuration.memoryMiB) << 20
        let dram = VirtMemoryMap.dram(size: size)
        ram = try GuestRAM(region: dram)
        // The clock reads the hart's retired count; the hart needs the bus,
        // the bus the clock: attach the counter once the hart exists.
        clock = GuestClock(mode: configuration.clock)
        // The console UART is a fixed device of every virt board: found by its type in the list.
        guard let uartSpec = machineType.devices.first(where: { ObjectIdentifier($0.deviceType) == ObjectIdentifier(UART16550.self) }) else {
            throw EmulatorCore.MachineError.unknownDevice(machineType: machineType.name, id: UART16550.driver)
        }
        let uart0 = try UART16550(properties: machineType.properties(of: uartSpec.id))
        var optionalDevices: [MappedDevice] = []
        for spec in machineType.devices {
            guard let type = spec.deviceType as? any VirtBusDevice.Type else { continue }
            let device = try type.init(properties: try machineType.properties(of: spec.id))
            optionalDevices.append(MappedDevice(id: spec.id, region: device.mappedRegion, device: device))
        }
        try Self.plugDrives(configuration.drives, into: optionalDevices, machineType: machineType)
        bus = Bus(clock: clock, uart0: uart0, optionalDevices: optionalDevices)
        hart = Hart(ram: ram, bus: bus)
        for mapped in optionalDevices { mapped.device.attach(ram: ram) }
        let retiredOffset = MemoryLayout<Hart.State>.offset(of: \Hart.State.retired)!
        clock.attach(retired: UnsafePointer((UnsafeMutableRawPointer(hart.sp) + retiredOffset).assumingMemoryBound(to: UInt64.self)))
        deviceTree = []
        entry = dram.base
        buildDeviceTree()
    }

    /// Opens each drive and plugs a virtio-blk for it into the highest free transport.
    private static func plugDrives(_ drives: [DriveConfiguration], into devices: [MappedDevice], machineType: MachineType) throws {
        guard !drives.isEmpty else { return }
        let transports = devices.compactMap { $0.device as? VirtioMMIO }.sorted { $0.slot > $1.slot }
        guard drives.count <= transports.count else {
            throw BoardError.tooManyDrives(machineType: machineType.name, drives: drives.count, slots: transports.count)
        }
        for (index, (drive, transport)) in zip(drives, transports).enumerated() {
            transport.plug(VirtioBlock(disk: try drive.open(), serial: "emupanel-disk\(index)"))
        }
    }

    /// The disk behind drive `index` (the order of `configuration.drives`).
    public func disk(_ index: Int) -> (any BlockDevice)? {
        virtioBlocks.indices.contains(index) ? virtioBlocks[index].disk : nil
    }

    /// Swaps drive `index`'s image for another of the same size — the panel's step when a
    /// snapshot freezes the current overlay and the guest goes on in a new one. Call it on the
    /// CPU thread or while parked: requests complete synchronously, so none is in flight.
    /// Returns the image it replaced, unflushed: the caller syncs it once the guest runs again
    /// (an fsync inside a snapshot's pause would lengthen it).
    @discardableResult
    public func replaceDisk(_ index: Int, with disk: any BlockDevice) throws -> any BlockDevice {
        guard virtioBlocks.indices.contains(index) else { throw BoardError.noSuchDrive(index) }
        let old = virtioBlocks[index].disk
        guard disk.sizeBytes == old.sizeBytes else {
            throw BoardError.diskSizeChanged(drive: index, old: old.sizeBytes, new: disk.sizeBytes)
        }
        virtioBlocks[index].disk = disk
        return old
    }

    /// The virtio-blk devices in drive order (highest transport first).
    private var virtioBlocks: [VirtioBlock] {
        bus.optionalDevices.compactMap { $0.device as? VirtioMMIO }.sorted { $0.slot > $1.slot }
            .compactMap { $0.device as? VirtioBlock }
    }

    private func buildDeviceTree() {
        let dram = ram.region
        deviceTree = VirtDeviceTree.build(
            memory: dram, optionalDevices: bus.optionalDevices.map(\.device),
            boot: bootArguments)
        // QEMU's riscv_load_fdt: end of DRAM (below 3 GiB), 2 MiB aligned down.
        let top = min(dram.end, dram.base + (3 << 30))
        deviceTreeAddress = (top - UInt64(deviceTree.count)) & ~((2 << 20) - 1)
    }

    /// The kernel command line and initrd the device tree's /chosen carries from the next
    /// `boot` on (QEMU's -append and -initrd).
    public func setBootArguments(_ arguments: BootArguments) {
        bootArguments = arguments
        buildDeviceTree()
    }

    /// Places an initrd where QEMU's riscv_load_initrd does — `kernelEntry` + half of RAM,
    /// at most 128 MiB, so a decompressing kernel cannot overwrite it — and names it in
    /// /chosen. It is put back on every reset like the other images.
    @discardableResult
    public func loadInitrd(_ bytes: [UInt8], kernelEntry: UInt64) throws -> Range<UInt64> {
        let start = kernelEntry &+ min(UInt64(ram.size) / 2, 128 << 20)
        _ = try ImageLoader.loadRaw(bytes, at: start, into: ram, name: "initrd")
        bootImages.append((start, bytes, false))
        let range = start..<start + UInt64(bytes.count)
        var arguments = bootArguments
        arguments.initrd = range
        setBootArguments(arguments)
        return range
    }

    // MARK: Boot

    /// Loads an image (ELF or raw) and returns its entry. Raw images go to
    /// `address`; ELF images to their own physical addresses.
    @discardableResult
    public func load(_ bytes: [UInt8], at address: UInt64, name: String = "image") throws -> UInt64 {
        if ImageLoader.isELF(bytes) {
            let image = try ImageLoader.loadELF(bytes, into: ram)
            bootImages.append((address, bytes, true))
            return image.entry
        }
        let image = try ImageLoader.loadRaw(bytes, at: address, into: ram, name: name)
        bootImages.append((address, bytes, false))
        return image.entry
    }

    /// Places the device tree and sets the reset state: pc = entry,
    /// a0 = hartid, a1 = device tree address (QEMU's reset vector does the same).
    public func boot(entry: UInt64) throws {
        self.entry = entry
        try ram.write(deviceTree, at: deviceTreeAddress)
        bus.reset()
        hart.reset(pc: entry)
        hart.sp.pointee.x[10] = hart.hartID
        hart.sp.pointee.x[11] = deviceTreeAddress
        hart.scratch.pointee.mipLines = 0
        clock.mtime = 0
    }

    /// Finisher 0x7777 / syscon-reboot: everything back to power-on.
    public func reset() throws {
        ram.clear()
        for image in bootImages {
            if image.isELF {
                _ = try ImageLoader.loadELF(image.bytes, into: ram)
            } else {
                _ = try ImageLoader.loadRaw(image.bytes, at: image.address, into: ram)
            }
        }
        try boot(entry: entry)
    }

    // MARK: Device state (snapshot = copy out, restore = copy in)

    public struct DeviceStates: Equatable, Sendable {
        public var hart: Hart.State
        public var clint: CLINT.State
        public var plic: PLIC.State
        public var uart0: UART16550.State
    }

    /// Restoring: put RAM back first (through `ram.write`, or raw copies into
    /// `ram.bytes`), then assign this; it drops all decoded instructions and
    /// re-derives interrupt lines and the clock offset.
    public var deviceStates: DeviceStates {
        get {
            DeviceStates(
                hart: hart.state, clint: bus.clint.state, plic: bus.plic.state,
                uart0: bus.uart0.state)
        }
        set {
            // The hart first: the clock re-bases mtime on the restored count.
            hart.state = newValue.hart
            bus.clint.state = newValue.clint
            bus.plic.state = newValue.plic
            bus.uart0.state = newValue.uart0
            ram.invalidateAllCode()
            bus.updateInterrupts()
            hart.scratch.pointee.mipLines = bus.mipLines
        }
    }

    // MARK: Dirty pages (call on the CPU thread, or while it is stopped)

    public func setDirtyLogging(_ on: Bool) {
        ram.setLogging(transfer: on)
        _ = ram.takeDirtyBitmap()
        hart.flushWriteTLB()
    }

    /// Counting written pages for the panel's graphs, independent of any transfer's log: with it
    /// on, each page costs one slow-path store per `takeDirtyPageCount` interval.
    public func setDirtyPageCounting(_ on: Bool) {
        ram.setSampling(on)
        _ = ram.takeDirtySampleCount()
        hart.flushWriteTLB()
    }

    /// Pages written since the last call (0 while counting is off).
    public func takeDirtyPageCount() -> Int {
        hart.flushWriteTLB()
        return ram.takeDirtySampleCount()
    }

    /// Pages written since the last call: bit i of word i/64 = page i of RAM.
    public func fetchAndClearDirtyPages() -> [UInt64] {
        hart.flushWriteTLB()
        return ram.takeDirtyBitmap()
    }

    // MARK: Running

    /// Runs until the finisher, the instruction limit (total retired) or
    /// `control` says stop.
    public func run(maxInstructions: UInt64? = nil, control: RunControl? = nil) -> RunExit {
        // Without a control nobody else asks anything; one of our own still gives WFI its doorbell.
        let control = control ?? RunControl()
        control.entered()
        defer { control.left() }
        console?.attach(control.cpuDoorbell)
        let s = hart.sp
        while true {
            if let exit = service(control) { return exit }
            pumpConsole()
            bus.updateInterrupts()
            hart.scratch.pointee.mipLines = bus.mipLines
            hart.checkInterrupts()
            if let limit = maxInstructions, s.pointee.retired >= limit { return .instructionLimit }
            if s.pointee.waitingForInterrupt {
                idle(control)
                continue
            }
            var budget = UInt64(sliceLength)
            if let limit = maxInstructions { budget = min(budget, limit - s.pointee.retired) }
            // icount: end the slice exactly when MTIP rises. Once it is high it
            // stays high until an MMIO write (which ends the slice anyway).
            if s.pointee.mie & Hart.irqMTI != 0, let n = clock.instructionsUntil(bus.clint.mtimecmp), n > 0 {
                budget = min(budget, n)
            }
            _ = hart.run(budget: Int(budget))
            flushConsole()
            if let request = bus.finisher.request {
                bus.finisher.request = nil
                switch request {
                case .pass: return .finisherPass
                case .fail(let code): return .finisherFail(code: code)
                case .reset:
                    do { try reset() } catch { return .finisherFail(code: 1) }
                }
            }
        }
    }

    /// WFI: icount warps time to the timer deadline; real time sleeps until it. Either way the
    /// CPU thread sleeps on its doorbell, so a run-control request or console input wakes it at
    /// once; with no timer armed only they do. (A device that raises an interrupt from another
    /// thread must ring `RunControl.cpuDoorbell` too.)
    private func idle(_ control: RunControl) {
        let timerArmed = hart.sp.pointee.mie & Hart.irqMTI != 0 && bus.clint.mtimecmp != .max
        let inputSeen = console?.inputSent ?? 0
        var deadline: UInt64?
        switch configuration.clock {
        case .icount:
            if timerArmed && !(console?.hasInput ?? false) {
                clock.warp(to: bus.clint.mtimecmp)
                return
            }
        case .realtime:
            if timerArmed {
                let now = clock.mtime
                if bus.clint.mtimecmp <= now { return }
                let ticks = bus.clint.mtimecmp - now
                // A deadline too far to represent is no deadline.
                let (nanoseconds, o1) = ticks.multipliedReportingOverflow(by: 1_000_000_000 / GuestClock.frequency)
                let (at, o2) = Doorbell.now().addingReportingOverflow(nanoseconds)
                if !o1 && !o2 { deadline = at }
            }
        }
        _ = control.cpuDoorbell.wait(deadline: deadline) {
            control.pending != 0 || (console?.inputSent ?? 0) != inputSeen
        }
    }

    private func pumpConsole() {
        guard let console else { return }
        let room = bus.uart0.receiveCapacity
        if room > 0, console.hasInput {
            for b in console.takeInput(max: room) { bus.uart0.receive(b) }
        }
    }

    func flushConsole() {
        guard !bus.uart0.transmitted.isEmpty else { return }
        console?.output(bus.uart0.transmitted)
        bus.uart0.transmitted.removeAll(keepingCapacity: true)
    }

    /// Pause/stop/dirty-sync requests from other threads, seen between slices.
    private func service(_ control: RunControl) -> RunExit? {
        while true {
            let request = control.pending
            if request == 0 { return nil }
            if request & RunControl.stopBit != 0 { flushConsole(); return .stopped }
            if request & RunControl.dirtySyncBit != 0 {
                control.completeDirtySync(fetchAndClearDirtyPages())
                continue
            }
            if request & RunControl.performBit != 0 {
                for body in control.takeWork() { body(self) }
                continue
            }
            if request & RunControl.pauseBit != 0 {
                flushConsole()
                clock.freeze()
                control.parked()
                // Work and dirty syncs asked for while parked are served without leaving the park:
                // another thread that saw the machine parked may go on reading its device state
                // (a snapshot of a paused guest), and the clock must not thaw and freeze meanwhile.
                while true {
                    control.waitWhilePaused()
                    let now = control.pending
                    if now & RunControl.stopBit != 0 { return .stopped }
                    if now & RunControl.dirtySyncBit != 0 {
                        control.completeDirtySync(fetchAndClearDirtyPages())
                        continue
                    }
                    if now & RunControl.performBit != 0 {
                        for body in control.takeWork() { body(self) }
                        continue
                    }
                    if now & RunControl.pauseBit == 0 { break }
                }
                control.unparked()
                clock.thaw()
                continue
            }
            return nil
        }
    }
}
