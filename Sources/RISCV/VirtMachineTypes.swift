// The machine types this release offers, as data: QEMU's DEFINE_VIRT_MACHINE chain in
// one table. Adding a machine version is one entry in `virtVersions` (with its compat
// array); adding a machine type is one entry in `all`.
import EmulatorCore
import Foundation

public enum VirtMachineTypes {
    /// The board every type here builds on: one hart and the virt devices, in the order their
    /// sections appear in a stream.
    static let boardDevices: [DeviceSpec] = [
        DeviceSpec(Hart.self, id: "cpu0"),
        DeviceSpec(CLINT.self, id: "clint"),
        DeviceSpec(PLIC.self, id: "plic"),
        DeviceSpec(UART16550.self, id: "uart0"),
        DeviceSpec(TestFinisher.self, id: "test"),
    ]

    static let defaultRAM: UInt64 = 128 << 20

    /// hw_compat_1_0: what virt-1.0 switches off relative to virt-1.1. Release 1.1 deepened the
    /// UART's receive FIFO to 64 bytes; virt-1.0 keeps QEMU's 16550A FIFO of 16.
    static let hwCompat1_0: [CompatProperty] = [
        CompatProperty(driver: UART16550.driver, property: "fifo-depth", value: "16")
    ]

    /// QEMU virt's eight virtio-mmio transports, listed from the last slot down as QEMU's
    /// device tree lists them; the first drive plugs into slot 7 (0x10008000, IRQ 8).
    static let virtioTransports: [DeviceSpec] = (0..<VirtIRQ.virtioCount).reversed().map { slot in
        DeviceSpec(VirtioMMIO.self, id: "virtio-mmio\(slot)", properties: ["slot": String(slot)])
    }

    /// Versions of the `virt` family, newest last; each one's guest ABI is frozen once released.
    /// virt-1.2 (release 1.2) adds the virtio-mmio transports, so disks; nothing of it changes
    /// what virt-1.0 and virt-1.1 guests see.
    static let virtVersions: [MachineVersionRelease] = [
        MachineVersionRelease(
            MachineVersion(1, 0), release: "1.0", releaseDate: releaseDate("2026-11-27"),
            compat: hwCompat1_0),
        MachineVersionRelease(MachineVersion(1, 1), release: "1.1", releaseDate: releaseDate("2026-11-27")),
        MachineVersionRelease(
            MachineVersion(1, 2), release: "1.2", releaseDate: releaseDate("2026-12-03"),
            devicesAdded: virtioTransports),
    ]

    public static let all: [MachineType] =
        MachineFamily.versioned(
            family: "virt", alias: "virt",
            description:
                "RISC-V virt board: RV64IMAC hart, CLINT, PLIC, NS16550A UART, test finisher (from 1.2: eight virtio-mmio transports for disks)",
            defaultRAMSize: defaultRAM, devices: boardDevices, versions: virtVersions)
        + [
            MachineType(
                name: "sandbox",
                description: "The virt board without a version: for experiments; its state moves only within a release",
                release: "1.0", releaseDate: releaseDate("2026-11-27"), defaultRAMSize: defaultRAM,
                devices: boardDevices),
            MachineType(
                name: "sandbox-hostrng",
                description: "The sandbox board plus a host entropy source (host-rng) that reads the host's /dev/urandom",
                release: "1.1", releaseDate: releaseDate("2026-11-27"), defaultRAMSize: defaultRAM,
                devices: boardDevices + [DeviceSpec(HostRNG.self, id: "rng0")]),
        ]

    /// Every type, checked: a device whose state no description covers stops the program here.
    public static let registry: MachineRegistry = {
        do {
            return try MachineRegistry(all)
        } catch {
            fatalError("the built-in machine types are unsound: \(error)")
        }
    }()

    /// What the alias `virt` resolves to: the machine a plain `VirtMachine()` builds.
    public static var newest: MachineType {
        guard let type = try? registry.resolve("virt") else { fatalError("the virt family has no versions") }
        return type
    }

    private static func releaseDate(_ text: String) -> Date? {
        try? Date(text + "T00:00:00Z", strategy: .iso8601)
    }
}
