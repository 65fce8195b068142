// `emupanel run`'s policy: QEMU-like options with their defaults (Debian's firmware), and what
// an outcome means as an exit status.
import EmulatorCore
import RISCV

/// Where Debian's packages put this board's firmware.
public enum DebianFirmware {
    /// OpenSBI's generic fw_jump.bin (`opensbi`).
    public static let openSBI = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin"
    /// S-mode U-Boot for QEMU's virt board (`u-boot-qemu`), loaded at RAM + 2 MiB.
    public static let uBoot = "/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin"
}

public enum BIOSChoice: Sendable, Equatable {
    /// OpenSBI's generic fw_jump.bin from Debian's `opensbi` package.
    case `default`
    case none
    case file(String)

    var path: String? {
        switch self {
        case .default: DebianFirmware.openSBI
        case .none: nil
        case .file(let path): path
        }
    }
}

public struct RunOptions: Sendable, Equatable {
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

    public init(
        machine: String = "virt", bios: BIOSChoice = .default, kernel: String? = nil,
        initrd: String? = nil, append: String? = nil, memoryMiB: Int = 128,
        icount: Bool = false, maxInstructions: UInt64? = nil
    ) {
        self.machine = machine
        self.bios = bios
        self.kernel = kernel
        self.initrd = initrd
        self.append = append
        self.memoryMiB = memoryMiB
        self.icount = icount
        self.maxInstructions = maxInstructions
    }

    /// The machine these options describe, built and booted (the type resolved from `machine`).
    public func makeMachine(registry: MachineRegistry = VirtMachineTypes.registry) throws -> VirtMachine {
        let type = try registry.resolve(machine)
        return try VirtMachine.booted(
            type, configuration: configuration, firmware: bios.path, kernel: kernel,
            initrd: initrd, commandLine: append)
    }

    var configuration: MachineConfiguration {
        MachineConfiguration(memoryMiB: memoryMiB, clock: icount ? .defaultICount : .realtime, drives: drives)
    }
}

extension RunOutcome {
    /// `emupanel run`'s exit status (SPEC §4): the finisher's code, 124 when the instruction limit ran out.
    public var exitStatus: Int32 {
        switch self {
        case .passed, .stopped: 0
        case .failed(let code): Int32(code)
        case .instructionLimit: 124
        }
    }
}
