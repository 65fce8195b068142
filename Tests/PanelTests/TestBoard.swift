// A small board defined inside the tests, so the machine-type routes can be tested
// before the RISC-V devices exist: a versioned family, an unversioned type and one
// with a host device (tier none).
import EmulatorCore
import Foundation
import VMState

enum TestBoard {
    /// Release 1.0's UART: version 2 added `lsr`; a FIFO depth other than 16 travels in a
    /// subsection that virt-1.0 switches off with a compat property.
    final class UART: Device {
        struct State: Equatable, Sendable {
            var ier: UInt8 = 0
            var lsr: UInt8 = 0x60
            var fifoDepth: UInt32 = 16
        }
        static let driver = "ns16550a"
        static let properties: [PropertyDefinition] = [.uint("fifo-depth", default: 64)]
        static let migration = DeviceMigration<State>.vmstate(VMStateDescription(
            name: "ns16550a", versionID: 2, minimumVersionID: 1,
            fields: [.uint8(\.ier), .uint8(\.lsr, since: 2)],
            subsections: [.init(VMStateDescription(name: "ns16550a/fifo-depth", versionID: 1, minimumVersionID: 1,
                                                   fields: [.uint32(\.fifoDepth)]),
                                needed: { $0.fifoDepth != 16 })],
            preLoad: { $0.fifoDepth = 16 }))
        var state = State()
    }

    final class Finisher: Device {
        static let driver = "test-finisher"
        static let migration = DeviceMigration<NoState>.stateless
    }

    final class HostSerial: Device {
        static let driver = "host-serial"
        static let migration = DeviceMigration<NoState>.unmigratable(reason: "holds an open host tty")
    }

    static let devices = [DeviceSpec(UART.self, id: "uart0"), DeviceSpec(Finisher.self, id: "finisher")]

    static let registry: MachineRegistry = {
        let virt = MachineFamily.versioned(
            family: "virt", alias: "virt", description: "test board", defaultRAMSize: 16 << 10, devices: devices,
            versions: [
                MachineVersionRelease(MachineVersion(1, 0), release: "0.9", releaseDate: utcDate(2020, 1, 15),
                                      compat: [CompatProperty(driver: "ns16550a", property: "fifo-depth", value: "16")]),
                MachineVersionRelease(MachineVersion(1, 1), release: "1.0", releaseDate: utcDate(2025, 6, 1)),
            ])
        let sandbox = MachineType(name: "sandbox", description: "unversioned test board", release: "1.0",
                                  defaultRAMSize: 16 << 10, devices: devices)
        let passthrough = MachineType(name: "passthrough", description: "board with a host device", release: "1.0",
                                      defaultRAMSize: 16 << 10,
                                      devices: devices + [DeviceSpec(HostSerial.self, id: "hostser0")])
        return try! MachineRegistry(virt + [sandbox, passthrough])
    }()
}

func utcDate(_ year: Int, _ month: Int, _ day: Int) -> Date {
    Calendar(identifier: .gregorian).date(from: DateComponents(timeZone: TimeZone(identifier: "UTC"), year: year,
                                                               month: month, day: day))!
}
