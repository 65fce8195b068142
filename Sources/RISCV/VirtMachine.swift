// The `virt` machine: RAM, one hart, the devices of VirtMemoryMap, a clock,
// boot conventions of QEMU (a0 = hartid, a1 = device tree), and the slice
// loop that runs the hart and services devices and interrupts between slices.
#if canImport(Glibc)
import Glibc
#endif
import EmulatorCore

public struct MachineConfiguration: Sendable, Equatable {
    public var memoryMiB: Int = 128
    public var clock: ClockMode = .realtime
    public init(memoryMiB: Int = 128, clock: ClockMode = .realtime) {
        self.memoryMiB = memoryMiB
        self.clock = clock
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
    public init(configuration: MachineConfiguration = MachineConfiguration(),
                machineType: MachineType = VirtMachineTypes.newest) throws {
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
            optionalDevices.append(MappedDevice(id: spec.id, region: VirtMemoryMap[type.region], device: device))
        }
        bus = Bus(clock: clock, uart0: uart0, optionalDevices: optionalDevices)
        hart = Hart(ram: ram, bus: bus)
        let retiredOffset = MemoryLayout<Hart.State>.offset(of: \Hart.State.retired)!
        clock.attach(retired: UnsafePointer((UnsafeMutableRawPointer(hart.sp) + retiredOffset).assumingMemoryBound(to: UInt64.self)))
        deviceTree = VirtDeviceTree.build(memory: dram, optionalDevices: optionalDevices.map { type(of: $0.device) })
        entry = dram.base
        // QEMU's riscv_load_fdt: end of DRAM (below 3 GiB), 2 MiB aligned down.
        let top = min(dram.end, dram.base + (3 << 30))
        deviceTreeAddress = (top - UInt64(deviceTree.count)) & ~((2 << 20) - 1)
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
            if image.isELF { _ = try ImageLoader.loadELF(image.bytes, into: ram) } else {
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
            DeviceStates(hart: hart.state, clint: bus.clint.state, plic: bus.plic.state,
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
        let s = hart.sp
        while true {
            if let control, let exit = service(control) { return exit }
            pumpConsole()
            bus.updateInterrupts()
            hart.scratch.pointee.mipLines = bus.mipLines
            hart.checkInterrupts()
            if let limit = maxInstructions, s.pointee.retired >= limit { return .instructionLimit }
            if s.pointee.waitingForInterrupt {
                idle()
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

    /// WFI: icount warps time to the timer deadline; real time sleeps a
    /// little (input or a control request may arrive meanwhile).
    private func idle() {
        let timerArmed = hart.sp.pointee.mie & Hart.irqMTI != 0 && bus.clint.mtimecmp != .max
        switch configuration.clock {
        case .icount:
            if timerArmed && !(console?.hasInput ?? false) {
                clock.warp(to: bus.clint.mtimecmp)
            } else {
                usleep(1000)
            }
        case .realtime:
            var sleep: UInt64 = 1000
            if timerArmed {
                let now = clock.mtime
                let ticks = bus.clint.mtimecmp > now ? bus.clint.mtimecmp - now : 0
                sleep = min(sleep, ticks / (GuestClock.frequency / 1_000_000))
            }
            if sleep > 0 { usleep(UInt32(sleep)) }
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
                let wake = RunControl.stopBit | RunControl.dirtySyncBit | RunControl.performBit
                while control.pending & RunControl.pauseBit != 0 && control.pending & wake == 0 {
                    control.waitWhilePaused()
                }
                if control.pending & RunControl.pauseBit == 0 { control.unparked() }
                clock.thaw()
                continue
            }
            return nil
        }
    }
}
