// Two "releases" of a tiny board, defined inside the tests: release 1 and release 2
// of the same device types (same driver and vmsd names, different Swift types), as
// two emupanel binaries of different releases would have them.
import EmulatorCore
import Foundation
import TestBoards
import VMState

// MARK: Release 1

enum R1 {
    /// NS16550A-like UART, release 1: no configurable FIFO depth yet.
    final class UART: Device {
        struct State: Equatable, Sendable {
            var ier: UInt8 = 0
            var lsr: UInt8 = 0x60
            var fifo = [UInt8](repeating: 0, count: 16)
        }
        static let driver = "ns16550a"
        static let migration = DeviceMigration<State>.vmstate(
            VMStateDescription(
                name: "ns16550a", versionID: 1, minimumVersionID: 1,
                fields: [.uint8(\.ier), .uint8(\.lsr), .bytes(\.fifo, count: 16)]))
        var state = State()
        init(properties: DeviceProperties) {}
    }

    /// Release 1's timer (version 1: only mtimecmp) and finisher are the shared test devices.
    typealias Timer = TestTimer
    typealias Finisher = TestFinisher

    static let machineTypes: [MachineType] = {
        let virt = MachineFamily.versioned(
            family: "virt", alias: "virt", description: "test board", defaultRAMSize: 16 << 10,
            devices: [DeviceSpec(UART.self, id: "uart0"), DeviceSpec(Finisher.self, id: "finisher")],
            versions: [MachineVersionRelease(MachineVersion(1, 0), release: "1.0")])
        let sandbox = MachineType(
            name: "sandbox", description: "unversioned test board", release: "1.0",
            defaultRAMSize: 16 << 10,
            devices: [DeviceSpec(UART.self, id: "uart0"), DeviceSpec(Timer.self, id: "timer")])
        return virt + [sandbox]
    }()
}

// MARK: Release 2

enum R2 {
    /// Release 2 adds a configurable FIFO depth. Old machine versions switch it back to
    /// 16 with a compat property; its state travels in a subsection only when it is not
    /// 16, so virt-1.0 streams stay readable by release 1.
    final class UART: Device {
        struct State: Equatable, Sendable {
            var ier: UInt8 = 0
            var lsr: UInt8 = 0x60
            var fifo = [UInt8](repeating: 0, count: 16)
            var fifoDepth: UInt32 = 16
        }
        static let driver = "ns16550a"
        static let properties: [PropertyDefinition] = [
            .uint("fifo-depth", default: 64, description: "receive FIFO depth in bytes"),
            .bool("loopback-test", default: true),
        ]
        static let migration = DeviceMigration<State>.vmstate(
            VMStateDescription(
                name: "ns16550a", versionID: 1, minimumVersionID: 1,
                fields: [.uint8(\.ier), .uint8(\.lsr), .bytes(\.fifo, count: 16)],
                subsections: [
                    .init(
                        VMStateDescription(
                            name: "ns16550a/fifo-depth", versionID: 1, minimumVersionID: 1,
                            fields: [.uint32(\.fifoDepth)],
                            postLoad: { state, _ in
                                guard [16, 32, 64].contains(state.fifoDepth) else {
                                    throw VMStateError.invalidValue(
                                        device: "ns16550a/fifo-depth", version: 1, field: "fifoDepth",
                                        reason: "unsupported depth \(state.fifoDepth)")
                                }
                            }),
                        needed: { $0.fifoDepth != 16 })
                ],
                preLoad: { $0.fifoDepth = 16 }))
        var state = State()
        init(properties: DeviceProperties) { state.fifoDepth = UInt32(properties.uint("fifo-depth")) }
    }

    /// Release 2 bumps the timer to version 2 (it now saves mtime): fine for the
    /// unversioned sandbox forward, refused backward, naming both versions.
    final class Timer: Device {
        struct State: Equatable, Sendable {
            var mtimecmp: UInt64 = .max
            var mtime: UInt64 = 0
        }
        static let driver = "test-timer"
        static let migration = DeviceMigration<State>.vmstate(
            VMStateDescription(
                name: "test-timer", versionID: 2, minimumVersionID: 1,
                fields: [.uint64(\.mtimecmp), .uint64(\.mtime, since: 2)]))
        var state = State()
    }

    typealias Finisher = R1.Finisher

    static let compat_1_1 = [
        CompatProperty(driver: "ns16550a", property: "loopback-test", value: "off"),
        CompatProperty(driver: "ns16550a", property: "fifo-depth", value: "32"),
    ]
    static let compat_1_0 = [CompatProperty(driver: "ns16550a", property: "fifo-depth", value: "16")]

    static let machineTypes: [MachineType] = {
        let virt = MachineFamily.versioned(
            family: "virt", alias: "virt", description: "test board", defaultRAMSize: 16 << 10,
            devices: [DeviceSpec(UART.self, id: "uart0"), DeviceSpec(Finisher.self, id: "finisher")],
            versions: [
                MachineVersionRelease(MachineVersion(1, 0), release: "1.0", releaseDate: date(2020, 1, 15), compat: compat_1_0),
                MachineVersionRelease(MachineVersion(1, 2), release: "2.0", releaseDate: date(2024, 6, 1)),
                MachineVersionRelease(MachineVersion(1, 1), release: "1.5", releaseDate: date(2022, 3, 1), compat: compat_1_1),
            ])
        let sandbox = MachineType(
            name: "sandbox", description: "unversioned test board", release: "1.0",
            defaultRAMSize: 16 << 10,
            devices: [DeviceSpec(UART.self, id: "uart0"), DeviceSpec(Timer.self, id: "timer")])
        return virt + [sandbox, Passthrough.machineType]
    }()
}

/// A device holding host state: it makes its machine type tier `none`.
final class HostSerial: Device {
    static let driver = "host-serial"
    static let migration = DeviceMigration<NoState>.unmigratable(reason: "holds an open host tty")
}

enum Passthrough {
    static let machineType = MachineType(
        name: "passthrough", description: "board with a host device", release: "2.0", defaultRAMSize: 16 << 10,
        devices: [
            DeviceSpec(R2.UART.self, id: "uart0"), DeviceSpec(HostSerial.self, id: "hostser0"),
            DeviceSpec(HostSerial.self, id: "hostser1"),
        ])
}

func date(_ year: Int, _ month: Int, _ day: Int) -> Date {
    Calendar(identifier: .gregorian).date(
        from: DateComponents(
            timeZone: TimeZone(identifier: "UTC"), year: year,
            month: month, day: day))!
}

/// A built test machine: RAM, devices, and its MachineState.
final class TestMachine {
    let ram: UnsafeMutableRawBufferPointer
    let state: MachineState
    var devices: [String: AnyObject] = [:]

    init(_ type: MachineType, release: Int, fill: (Int) -> UInt8 = { _ in 0 }) throws {
        ram = .allocate(byteCount: Int(type.defaultRAMSize), alignment: 4096)
        for i in 0..<ram.count { ram[i] = fill(i) }
        state = MachineState(machineType: type, ramBlocks: [RAMBlock(idstr: "test.ram", memory: ram)])
        for spec in type.devices {
            let properties = try type.properties(of: spec.id)
            let device: AnyObject
            switch (release, spec.driver) {
            case (1, "ns16550a"): let d = R1.UART(properties: properties); device = d; try state.register(d, id: spec.id)
            case (2, "ns16550a"): let d = R2.UART(properties: properties); device = d; try state.register(d, id: spec.id)
            case (1, "test-timer"): let d = R1.Timer(); device = d; try state.register(d, id: spec.id)
            case (2, "test-timer"): let d = R2.Timer(); device = d; try state.register(d, id: spec.id)
            case (_, "test-finisher"): let d = R1.Finisher(); device = d; try state.register(d, id: spec.id)
            case (_, "host-serial"): let d = HostSerial(); device = d; try state.register(d, id: spec.id)
            default: fatalError("no device \(spec.driver) in release \(release)")
            }
            devices[spec.id] = device
        }
    }

    deinit { ram.deallocate() }

    func device<D: Device>(_ id: String, as type: D.Type) -> D { devices[id] as! D }
    var ramBytes: [UInt8] { Array(ram) }

    func snapshot() throws -> [UInt8] {
        let sink = MemorySink()
        try state.saveSnapshot(to: sink)
        return sink.bytes
    }

    func load(_ bytes: [UInt8]) throws { try state.load(from: MemorySource(bytes)) }
}

/// Test guests never write a zero byte (SPEC §3): cycle 1…255.
func pattern(_ i: Int) -> UInt8 { UInt8(i % 255 + 1) }
