// The headless run API behind `emupanel run`: build a `virt` machine from
// options like QEMU's (-bios, -kernel, -m, -icount), run the guest CPU on
// its own thread (never Swift's cooperative pool) and report how it ended.
import EmulatorCore
import Foundation
import Synchronization

public enum BIOSChoice: Sendable, Equatable {
    /// OpenSBI's generic fw_jump.bin from Debian's `opensbi` package.
    case `default`
    case none
    case file(String)
}

public struct RunOptions: Sendable, Equatable {
    public static let defaultBIOSPath = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin"

    public var machine = "virt"
    public var bios: BIOSChoice = .default
    public var kernel: String?
    /// A ramdisk placed after the kernel and named in /chosen (QEMU's -initrd); needs a kernel.
    public var initrd: String?
    /// The kernel command line, /chosen/bootargs (QEMU's -append).
    public var append: String?
    public var memoryMiB = 128
    /// Disk images (QEMU's -drive), on virtio-blk from the last virtio-mmio slot down.
    public var drives: [DriveConfiguration] = []
    public var icount = false
    public var maxInstructions: UInt64?
    public var dumpDTB: String?

    public init(machine: String = "virt", bios: BIOSChoice = .default, kernel: String? = nil,
                initrd: String? = nil, append: String? = nil, memoryMiB: Int = 128,
                icount: Bool = false, maxInstructions: UInt64? = nil, dumpDTB: String? = nil) {
        self.machine = machine
        self.bios = bios
        self.kernel = kernel
        self.initrd = initrd
        self.append = append
        self.memoryMiB = memoryMiB
        self.icount = icount
        self.maxInstructions = maxInstructions
        self.dumpDTB = dumpDTB
    }
}

public enum RunOutcome: Sendable, Equatable {
    case passed
    case failed(code: UInt32)
    case instructionLimit
    case stopped
    case dumpedDeviceTree

    /// How a finished `VirtMachine.run` reads to its caller.
    public init(_ exit: RunExit) {
        switch exit {
        case .finisherPass: self = .passed
        case .finisherFail(let code): self = .failed(code: code)
        case .instructionLimit: self = .instructionLimit
        case .stopped: self = .stopped
        }
    }

    /// `emupanel run`'s exit status (SPEC §4).
    public var exitStatus: Int32 {
        switch self {
        case .passed, .stopped, .dumpedDeviceTree: return 0
        case .failed(let code): return Int32(code)
        case .instructionLimit: return 124
        }
    }
}

/// A machine handed to the CPU thread.
// @unchecked Sendable: after `start` only the CPU thread touches the machine; other threads use RunControl/SerialConsole.
final class MachineBox: @unchecked Sendable {
    let machine: VirtMachine
    init(_ machine: VirtMachine) { self.machine = machine }
}

/// A guest running on its own thread.
public final class GuestRun: Sendable {
    public let control: RunControl
    private let result = Mutex<RunOutcome?>(nil)
    private let retired = Atomic<UInt64>(0)
    private let nanoseconds = Atomic<UInt64>(0)
    private let done = DispatchSemaphore(value: 0)

    init(box: MachineBox, maxInstructions: UInt64?, control: RunControl) {
        self.control = control
        let thread = Thread { [self] in
            let start = DispatchTime.now().uptimeNanoseconds
            let exit = box.machine.run(maxInstructions: maxInstructions, control: control)
            self.nanoseconds.store(DispatchTime.now().uptimeNanoseconds - start, ordering: .relaxed)
            self.retired.store(box.machine.hart.state.retired, ordering: .relaxed)
            let outcome = RunOutcome(exit)
            self.result.withLock { $0 = outcome }
            self.done.signal()
        }
        thread.name = "emupanel-cpu0"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Blocks until the guest ends.
    public func wait() -> RunOutcome {
        done.wait()
        done.signal()
        return result.withLock { $0 } ?? .stopped
    }

    /// Instructions the guest retired (valid once it ended).
    public var instructionsRetired: UInt64 { retired.load(ordering: .relaxed) }
    /// Wall-clock time the CPU thread ran (valid once it ended).
    public var runSeconds: Double { Double(nanoseconds.load(ordering: .relaxed)) / 1e9 }

    /// nil while running.
    public var outcome: RunOutcome? { result.withLock { $0 } }
}

/// A board that cannot be built as configured.
public enum BoardError: Error, Equatable, CustomStringConvertible {
    case tooManyDrives(machineType: String, drives: Int, slots: Int)
    case noSuchDrive(Int)
    case diskSizeChanged(drive: Int, old: UInt64, new: UInt64)

    public var description: String {
        switch self {
        case .tooManyDrives(let type, let drives, let slots):
            return "\(type) has \(slots) virtio-mmio slots; \(drives) drives do not fit" + (slots == 0 ? " (disks need virt-1.2 or newer)" : "")
        case .noSuchDrive(let index): return "the machine has no drive \(index)"
        case .diskSizeChanged(let drive, let old, let new): return "drive \(drive) is \(old) bytes; a replacement of \(new) bytes would change the guest's disk"
        }
    }
}

/// Options that cannot boot together.
public enum BootOptionError: Error, Equatable, CustomStringConvertible {
    case initrdWithoutKernel

    public var description: String {
        switch self {
        case .initrdWithoutKernel: return "an initrd needs a kernel (--kernel)"
        }
    }
}

public enum HeadlessRunner {
    /// Builds and boots the machine the options describe (QEMU's rules:
    /// BIOS at the start of DRAM, kernel at DRAM + 2 MiB; without BIOS the
    /// kernel is the first thing to run).
    /// `options.machine` names the machine type (alias or canonical): its devices and their
    /// properties, compat applied, decide what is built.
    public static func makeMachine(_ options: RunOptions) throws -> VirtMachine {
        let machine = try makeBoard(options)
        let dram = machine.ram.region
        var entry = dram.base
        let biosPath: String?
        switch options.bios {
        case .default: biosPath = RunOptions.defaultBIOSPath
        case .none: biosPath = nil
        case .file(let p): biosPath = p
        }
        if let biosPath {
            entry = try machine.load(try readFile(biosPath), at: dram.base, name: "bios")
        }
        if let kernel = options.kernel {
            let address = biosPath == nil ? dram.base : dram.base + VirtMemoryMap.kernelOffset
            let kernelEntry = try machine.load(try readFile(kernel), at: address, name: "kernel")
            if biosPath == nil { entry = kernelEntry }
            if let initrd = options.initrd {
                try machine.loadInitrd(try readFile(initrd), kernelEntry: kernelEntry)
            }
        } else if options.initrd != nil {
            throw BootOptionError.initrdWithoutKernel
        }
        try machine.boot(entry: entry)
        return machine
    }

    /// The board the options name, with its /chosen command line; no images yet.
    static func makeBoard(_ options: RunOptions) throws -> VirtMachine {
        let type = try VirtMachineTypes.registry.resolve(options.machine)
        let config = MachineConfiguration(memoryMiB: options.memoryMiB, clock: options.icount ? .defaultICount : .realtime,
                                          drives: options.drives)
        let machine = try VirtMachine(configuration: config, machineType: type)
        machine.setBootArguments(BootArguments(commandLine: options.append))
        return machine
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw MachineError.unreadableFile(path) }
        return [UInt8](data)
    }

    /// Starts the guest on its own thread.
    public static func start(_ options: RunOptions, console: SerialConsole, control: RunControl = RunControl()) throws -> GuestRun {
        let machine = try makeMachine(options)
        machine.console = console
        return GuestRun(box: MachineBox(machine), maxInstructions: options.maxInstructions, control: control)
    }

    /// Runs to the end (blocking the caller, not the CPU thread).
    public static func run(_ options: RunOptions, console: SerialConsole, control: RunControl = RunControl()) throws -> RunOutcome {
        if let path = options.dumpDTB {
            // Like QEMU's dumpdtb: the tree the guest would get, initrd bounds included.
            let machine = options.initrd == nil ? try makeBoard(options) : try makeMachine(options)
            guard FileManager.default.createFile(atPath: path, contents: Data(machine.deviceTree)) else {
                throw MachineError.unreadableFile(path)
            }
            return .dumpedDeviceTree
        }
        return try start(options, console: console, control: control).wait()
    }

    /// Like `run`, also reporting instructions retired and CPU-thread seconds.
    public static func runMeasured(_ options: RunOptions, console: SerialConsole, control: RunControl = RunControl()) throws -> (outcome: RunOutcome, instructions: UInt64, seconds: Double) {
        let run = try start(options, console: console, control: control)
        let outcome = run.wait()
        return (outcome, run.instructionsRetired, run.runSeconds)
    }
}
