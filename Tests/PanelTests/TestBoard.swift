// A small board defined inside the tests, so the machine-type routes can be tested
// before the RISC-V devices exist: a versioned family, an unversioned type and one
// with a host device (tier none).
import EmulatorCore
import Foundation
import TestBoards
import VMState

enum TestBoard {
    static let devices = [DeviceSpec(TestUART.self, id: "uart0"), DeviceSpec(TestFinisher.self, id: "finisher")]

    static let registry: MachineRegistry = {
        let virt = MachineFamily.versioned(
            family: "virt", alias: "virt", description: "test board", defaultRAMSize: 16 << 10, devices: devices,
            versions: [
                MachineVersionRelease(
                    MachineVersion(1, 0), release: "0.9", releaseDate: utcDate(2020, 1, 15),
                    compat: [CompatProperty(driver: "ns16550a", property: "fifo-depth", value: "16")]),
                MachineVersionRelease(MachineVersion(1, 1), release: "1.0", releaseDate: utcDate(2025, 6, 1)),
            ])
        let sandbox = MachineType(
            name: "sandbox", description: "unversioned test board", release: "1.0",
            defaultRAMSize: 16 << 10, devices: devices)
        let passthrough = MachineType(
            name: "passthrough", description: "board with a host device", release: "1.0",
            defaultRAMSize: 16 << 10,
            devices: devices + [DeviceSpec(TestHostSerial.self, id: "hostser0")])
        return try! MachineRegistry(virt + [sandbox, passthrough])
    }()
}
