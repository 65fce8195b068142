// Machine types: computed tiers, aliases, compat properties, deprecation, and the
// registration rules that keep undescribed state out.
import Foundation
import Testing
import VMState

@testable import EmulatorCore

@Suite struct MachineTypeTests {
    let registry = try! MachineRegistry(R2.machineTypes)

    @Test func tiersAreComputed() throws {
        #expect(try registry.resolve("virt-1.0").tier == .versioned)
        #expect(try registry.resolve("sandbox").tier == .unversioned)
        let passthrough = try registry.resolve("passthrough")
        #expect(passthrough.tier == .none)
        #expect(
            passthrough.blockers == [
                MigrationBlocker(deviceID: "hostser0", driver: "host-serial", reason: "holds an open host tty"),
                MigrationBlocker(deviceID: "hostser1", driver: "host-serial", reason: "holds an open host tty"),
            ])
    }

    @Test func namesVersionsAndFamilies() throws {
        let virt = try registry.resolve("virt-1.1")
        #expect(virt.version == MachineVersion(1, 1))
        #expect(virt.family == "virt")
        #expect(try registry.resolve("sandbox").version == nil)
        #expect(MachineVersion("1.x") == nil && MachineVersion("10.2") == MachineVersion(10, 2))
    }

    @Test func aliasResolvesToTheNewestVersionedType() throws {
        #expect(try registry.resolve("virt").name == "virt-1.2")
        #expect(try registry.canonicalName("virt-1.0") == "virt-1.0")
        #expect(throws: MachineError.self) { try registry.resolve("pc") }
        // Release 1 only knows virt-1.0, so there the alias means virt-1.0.
        #expect(try MachineRegistry(R1.machineTypes).resolve("virt").name == "virt-1.0")
    }

    @Test func compatPropertiesAccumulateNewestFirst() throws {
        let v12 = try registry.resolve("virt-1.2")
        let v11 = try registry.resolve("virt-1.1")
        let v10 = try registry.resolve("virt-1.0")
        #expect(v12.compatProperties == [])
        #expect(v11.compatProperties == R2.compat_1_1)
        #expect(v10.compatProperties == R2.compat_1_1 + R2.compat_1_0)
        #expect(try v12.properties(of: "uart0").uint("fifo-depth") == 64)
        #expect(try v11.properties(of: "uart0").uint("fifo-depth") == 32)
        // compat_1_0 comes after compat_1_1, so the older machine's setting wins.
        #expect(try v10.properties(of: "uart0").uint("fifo-depth") == 16)
        #expect(try v10.properties(of: "uart0").bool("loopback-test") == false)
        #expect(try v12.properties(of: "uart0").bool("loopback-test") == true)
    }

    @Test func compatPropertyNamingAMissingPropertyIsRefused() {
        let broken = MachineType(
            name: "broken-1.0", description: "", release: "2.0", defaultRAMSize: 4096,
            devices: [DeviceSpec(R2.UART.self, id: "uart0")],
            compatProperties: [CompatProperty(driver: "ns16550a", property: "fifo-size", value: "1")])
        #expect(throws: MachineError.unknownProperty(driver: "ns16550a", property: "fifo-size")) {
            try MachineRegistry([broken])
        }
        let badValue = MachineType(
            name: "broken-1.1", description: "", release: "2.0", defaultRAMSize: 4096,
            devices: [DeviceSpec(R2.UART.self, id: "uart0")],
            compatProperties: [CompatProperty(driver: "ns16550a", property: "fifo-depth", value: "deep")])
        #expect(throws: MachineError.invalidPropertyValue(driver: "ns16550a", property: "fifo-depth", value: "deep")) {
            try MachineRegistry([badValue])
        }
    }

    @Test func deprecationIsDataOnTheType() throws {
        let v10 = try registry.resolve("virt-1.0")
        let v12 = try registry.resolve("virt-1.2")
        #expect(v10.isDeprecated(asOf: date(2023, 1, 16)))
        #expect(!v10.isDeprecated(asOf: date(2023, 1, 14)))
        #expect(!v12.isDeprecated(asOf: date(2025, 1, 1)))
        #expect(v12.isDeprecated(asOf: date(2030, 1, 1), policy: DeprecationPolicy(maximumAgeInYears: 5)))
        // Unversioned types have no version to age out.
        #expect(!(try registry.resolve("sandbox")).isDeprecated(asOf: date(2100, 1, 1)))
    }

    @Test func duplicateNamesAndAliasClashesAreRefused() {
        #expect(throws: MachineError.duplicateMachineType("sandbox")) {
            try MachineRegistry(R2.machineTypes + [R2.machineTypes.first { $0.name == "sandbox" }!])
        }
        let clash = MachineType(
            name: "other", alias: "sandbox", description: "", release: "2.0", defaultRAMSize: 4096,
            devices: [])
        #expect(throws: MachineError.aliasConflict(alias: "sandbox", machineType: "other")) {
            try MachineRegistry(R2.machineTypes + [clash])
        }
    }
}

// MARK: - Registration: stateful devices need descriptions

/// Declares itself stateless although it has state: QEMU would drop that state.
final class Liar: Device {
    struct State: Sendable { var secret: UInt32 = 0 }
    static let driver = "liar"
    static let migration = DeviceMigration<State>.stateless
    var state = State()
}

/// Describes only part of its state.
final class Leaky: Device {
    struct State: Sendable {
        var saved: UInt8 = 0
        var forgotten: UInt32 = 0
        var cache: UInt64 = 0  // derived, declared notMigrated
    }
    static let driver = "leaky"
    static let migration = DeviceMigration<State>.vmstate(
        VMStateDescription(
            name: "leaky", versionID: 1, minimumVersionID: 1, fields: [.uint8(\.saved)], notMigrated: ["cache"]))
    var state = State()
}

/// A description with a badly named subsection.
final class Misnamed: Device {
    struct State: Sendable { var a: UInt8 = 0 }
    static let driver = "misnamed"
    static let migration = DeviceMigration<State>.vmstate(
        VMStateDescription(
            name: "misnamed", versionID: 1, minimumVersionID: 1, fields: [],
            subsections: [
                .init(
                    VMStateDescription(name: "other/a", versionID: 1, minimumVersionID: 1, fields: [.uint8(\.a)]),
                    needed: { _ in true })
            ]))
    var state = State()
}

@Suite struct RegistrationTests {
    func machine(_ spec: DeviceSpec) -> MachineType {
        MachineType(name: "m", description: "", release: "2.0", defaultRAMSize: 4096, devices: [spec])
    }

    @Test func statefulDeviceWithoutDescriptionCannotBeRegistered() throws {
        #expect(throws: MachineError.statefulWithoutDescription(driver: "liar", stateType: "State")) {
            try MachineRegistry([machine(DeviceSpec(Liar.self, id: "liar0"))])
        }
        let state = MachineState(machineType: machine(DeviceSpec(Liar.self, id: "liar0")), ramBlocks: [])
        #expect(throws: MachineError.statefulWithoutDescription(driver: "liar", stateType: "State")) {
            try state.register(Liar(), id: "liar0")
        }
    }

    @Test func stateNoFieldCarriesIsRefused() throws {
        let state = MachineState(machineType: machine(DeviceSpec(Leaky.self, id: "leaky0")), ramBlocks: [])
        let error = #expect(throws: MachineError.self) { try state.register(Leaky(), id: "leaky0") }
        #expect(error == .unmigratedState(driver: "leaky", properties: ["forgotten"]))
        #expect(error?.description.contains("'forgotten'") == true)
    }

    @Test func badDescriptionsAreRefused() {
        #expect(throws: MachineError.self) { try MachineRegistry([machine(DeviceSpec(Misnamed.self, id: "x"))]) }
    }

    @Test func deviceMustMatchItsSlot() throws {
        let type = try MachineRegistry(R2.machineTypes).resolve("sandbox")
        let state = MachineState(machineType: type, ramBlocks: [])
        #expect(throws: MachineError.deviceDriverMismatch(id: "timer", expected: "test-timer", actual: "ns16550a")) {
            try state.register(R2.UART(properties: try type.properties(of: "uart0")), id: "timer")
        }
        #expect(throws: MachineError.unknownDevice(machineType: "sandbox", id: "uart9")) {
            try state.register(R2.Timer(), id: "uart9")
        }
        try state.register(R2.Timer(), id: "timer")
        #expect(throws: MachineError.deviceAlreadyRegistered(id: "timer")) { try state.register(R2.Timer(), id: "timer") }
        #expect(throws: MachineError.devicesMissing(machineType: "sandbox", ids: ["uart0"])) {
            try state.saveSnapshot(to: MemorySink())
        }
    }

    @Test func unmigratableMachineIsRefusedUpFrontListingEveryBlocker() throws {
        let machine = try TestMachine(Passthrough.machineType, release: 2)
        let error = #expect(throws: MachineError.self) { try machine.snapshot() }
        #expect(
            error?.description == "machine type 'passthrough' cannot be snapshotted or migrated: "
                + "device 'hostser0' (host-serial): holds an open host tty; device 'hostser1' (host-serial): holds an open host tty")
        #expect(throws: MachineError.self) { try machine.load([]) }
    }
}
