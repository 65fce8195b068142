// Building a machine with its boot images, as QEMU's -bios / -kernel do on `virt`.
import EmulatorCore
import Foundation

extension VirtMachine {
    /// Builds `type`'s board and loads its images: `firmware` (when given) at the start of RAM
    /// and the kernel at RAM + 2 MiB after it; without firmware the kernel is the first thing to
    /// run (an ELF at its own addresses, a raw image at the start of RAM).
    public static func booted(_ type: MachineType, configuration: MachineConfiguration = MachineConfiguration(),
                              firmware: String?, kernel: String?) throws -> VirtMachine {
        let machine = try VirtMachine(configuration: configuration, machineType: type)
        let dram = machine.ram.region
        var entry = dram.base
        if let firmware {
            entry = try machine.load(try readImage(firmware), at: dram.base, name: "firmware")
        }
        if let kernel {
            let address = firmware == nil ? dram.base : dram.base + VirtMemoryMap.kernelOffset
            let kernelEntry = try machine.load(try readImage(kernel), at: address, name: "kernel")
            if firmware == nil { entry = kernelEntry }
        }
        try machine.boot(entry: entry)
        return machine
    }

    static func readImage(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw MachineError.unreadableFile(path) }
        return [UInt8](data)
    }
}
