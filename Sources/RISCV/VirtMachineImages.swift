// Building a machine with its boot images, as QEMU's -bios / -kernel do on `virt`.
import EmulatorCore
import Foundation

extension VirtMachine {
    /// Builds `type`'s board and loads its images: `firmware` (when given) at the start of RAM
    /// and the kernel at RAM + 2 MiB after it; without firmware the kernel is the first thing to
    /// run (an ELF at its own addresses, a raw image at the start of RAM). An `initrd` goes after
    /// the kernel and is named in /chosen with the `commandLine` (QEMU's -initrd and -append).
    public static func booted(
        _ type: MachineType, configuration: MachineConfiguration = MachineConfiguration(),
        firmware: String?, kernel: String?, initrd: String? = nil, commandLine: String? = nil
    ) throws -> VirtMachine {
        let machine = try board(type, configuration: configuration, commandLine: commandLine)
        let dram = machine.ram.region
        var entry = dram.base
        if let firmware {
            entry = try machine.load(try readImage(firmware), at: dram.base, name: "firmware")
        }
        if let kernel {
            let address = firmware == nil ? dram.base : dram.base + VirtMemoryMap.kernelOffset
            let kernelEntry = try machine.load(try readImage(kernel), at: address, name: "kernel")
            if firmware == nil { entry = kernelEntry }
            if let initrd {
                try machine.loadInitrd(try readImage(initrd), kernelEntry: kernelEntry)
            }
        } else if initrd != nil {
            throw BootOptionError.initrdWithoutKernel
        }
        try machine.boot(entry: entry)
        return machine
    }

    /// `type`'s board with its /chosen command line and no images (what `--dumpdtb` shows).
    public static func board(_ type: MachineType, configuration: MachineConfiguration, commandLine: String? = nil) throws -> VirtMachine {
        let machine = try VirtMachine(configuration: configuration, machineType: type)
        machine.setBootArguments(BootArguments(commandLine: commandLine))
        return machine
    }

    static func readImage(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw MachineError.unreadableFile(path) }
        return [UInt8](data)
    }
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
        case .diskSizeChanged(let drive, let old, let new):
            return "drive \(drive) is \(old) bytes; a replacement of \(new) bytes would change the guest's disk"
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
