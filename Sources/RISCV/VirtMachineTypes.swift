// The machine types this release offers, as data: QEMU's DEFINE_VIRT_MACHINE chain in
// one table. Adding a machine version is one entry in `virtVersions` plus its compat array.
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

    /// Versions of the `virt` family, newest last; each one's guest ABI is frozen once released.
    static let virtVersions: [MachineVersionRelease] = [
        MachineVersionRelease(MachineVersion(1, 0), release: "1.0", releaseDate: releaseDate("2026-11-27")),
    ]

    public static let all: [MachineType] = MachineFamily.versioned(
        family: "virt", alias: "virt",
        description: "RISC-V virt board: RV64IMAC hart, CLINT, PLIC, NS16550A UART, test finisher",
        defaultRAMSize: defaultRAM, devices: boardDevices, versions: virtVersions)
        + [
            MachineType(name: "sandbox",
                        description: "The virt board without a version: for experiments; its state moves only within a release",
                        release: "1.0", releaseDate: releaseDate("2026-11-27"), defaultRAMSize: defaultRAM,
                        devices: boardDevices),
        ]

    /// Every type, checked: a device whose state no description covers stops the program here.
    public static let registry: MachineRegistry = {
        do {
            return try MachineRegistry(all)
        } catch {
            fatalError("the built-in machine types are unsound: \(error)")
        }
    }()

    private static func releaseDate(_ text: String) -> Date? {
        try? Date(text + "T00:00:00Z", strategy: .iso8601)
    }
}
