// The tier promises of SPEC §1, between two releases of the same board:
// versioned types migrate forward and backward; unversioned ones work or fail
// before any device state is applied, naming the device and both versions.
import Testing
import VMState

@testable import EmulatorCore

@Suite struct CrossReleaseTests {
    let r1 = try! MachineRegistry(R1.machineTypes)
    let r2 = try! MachineRegistry(R2.machineTypes)

    func seeded(_ machine: TestMachine) {
        for i in 0..<machine.ram.count { machine.ram[i] = i < 8192 ? pattern(i) : 0 }
    }

    @Test func versionedForwardRelease1ToRelease2() throws {
        let source = try TestMachine(r1.resolve("virt-1.0"), release: 1)
        seeded(source)
        source.device("uart0", as: R1.UART.self).state = .init(ier: 0x0f, lsr: 0x61, fifo: Array(1...16))
        let bytes = try source.snapshot()

        let destination = try TestMachine(r2.resolve("virt-1.0"), release: 2)
        try destination.load(bytes)
        let uart = destination.device("uart0", as: R2.UART.self).state
        #expect(uart == R2.UART.State(ier: 0x0f, lsr: 0x61, fifo: Array(1...16), fifoDepth: 16))
        #expect(destination.ramBytes == source.ramBytes)
    }

    @Test func versionedBackwardRelease2ToRelease1() throws {
        // virt-1.0 on release 2 has fifo-depth 16 through compat_1_0, so no subsection.
        let source = try TestMachine(r2.resolve("virt-1.0"), release: 2)
        seeded(source)
        #expect(source.device("uart0", as: R2.UART.self).state.fifoDepth == 16)
        source.device("uart0", as: R2.UART.self).state.ier = 0x05
        let bytes = try source.snapshot()

        let destination = try TestMachine(r1.resolve("virt-1.0"), release: 1)
        try destination.load(bytes)
        #expect(destination.device("uart0", as: R1.UART.self).state.ier == 0x05)
        #expect(destination.ramBytes == source.ramBytes)
    }

    @Test func featureTurnedOnAgainstCompatIsRefusedByTheOldRelease() throws {
        // Had virt-1.0 not switched fifo-depth off, its state would need a subsection
        // release 1 does not know: refused by name, with nothing applied.
        let source = try TestMachine(r2.resolve("virt-1.0"), release: 2)
        source.device("uart0", as: R2.UART.self).state.fifoDepth = 64
        let bytes = try source.snapshot()
        let destination = try TestMachine(r1.resolve("virt-1.0"), release: 1)
        destination.device("uart0", as: R1.UART.self).state.ier = 0x77
        let error = #expect(throws: VMStateError.self) { try destination.load(bytes) }
        #expect(error == .unknownSubsection(name: "ns16550a/fifo-depth", parent: "ns16550a", version: 1))
        #expect(destination.device("uart0", as: R1.UART.self).state.ier == 0x77)
    }

    @Test func newestVersionKeepsItsFeatureAcrossTheSameRelease() throws {
        let source = try TestMachine(r2.resolve("virt"), release: 2)
        #expect(source.state.machineType.name == "virt-1.2")
        #expect(source.device("uart0", as: R2.UART.self).state.fifoDepth == 64)
        let bytes = try source.snapshot()
        let destination = try TestMachine(r2.resolve("virt-1.2"), release: 2)
        destination.device("uart0", as: R2.UART.self).state.fifoDepth = 32
        try destination.load(bytes)
        #expect(destination.device("uart0", as: R2.UART.self).state.fifoDepth == 64)
    }

    @Test func unversionedForwardLoadsAVersion1Stream() throws {
        let source = try TestMachine(r1.resolve("sandbox"), release: 1)
        source.device("timer", as: R1.Timer.self).state.mtimecmp = 12345
        let bytes = try source.snapshot()
        let destination = try TestMachine(r2.resolve("sandbox"), release: 2)
        destination.device("timer", as: R2.Timer.self).state.mtime = 99
        try destination.load(bytes)
        // mtime is not in a version-1 stream: the destination keeps its own.
        #expect(destination.device("timer", as: R2.Timer.self).state == .init(mtimecmp: 12345, mtime: 99))
    }

    @Test func unversionedBackwardFailsBeforeAnyDeviceStateIsApplied() throws {
        let source = try TestMachine(r2.resolve("sandbox"), release: 2)
        source.device("uart0", as: R2.UART.self).state.ier = 0x0a
        source.device("uart0", as: R2.UART.self).state.fifoDepth = 16  // so only the timer differs
        source.device("timer", as: R2.Timer.self).state = .init(mtimecmp: 1, mtime: 2)
        let bytes = try source.snapshot()
        let destination = try TestMachine(r1.resolve("sandbox"), release: 1)
        let error = #expect(throws: VMStateError.self) { try destination.load(bytes) }
        #expect(error == .versionTooNew(device: "test-timer", incoming: 2, local: 1))
        #expect(error?.description == "test-timer: incoming version_id 2 is greater than our version_id 1")
        // The UART section came first and decoded fine, yet nothing was applied.
        #expect(destination.device("uart0", as: R1.UART.self).state == R1.UART.State())
        #expect(destination.device("timer", as: R1.Timer.self).state == R1.Timer.State())
    }

    @Test func snapshotPreflightRefusesBeforeRAMIsTouched() throws {
        let source = try TestMachine(r2.resolve("sandbox"), release: 2) { pattern($0) }
        source.device("uart0", as: R2.UART.self).state.fifoDepth = 16
        let bytes = try source.snapshot()
        let destination = try TestMachine(r1.resolve("sandbox"), release: 1)
        #expect(throws: VMStateError.versionTooNew(device: "test-timer", incoming: 2, local: 1)) {
            try destination.state.preflight(snapshotTail: Array(bytes.suffix(4096)))
        }
        #expect(destination.ramBytes.allSatisfy { $0 == 0 })
        // With fifo-depth on, the unknown subsection is found the same way.
        source.device("uart0", as: R2.UART.self).state.fifoDepth = 64
        let withSubsection = try source.snapshot()
        #expect(throws: VMStateError.unknownSubsection(name: "ns16550a/fifo-depth", parent: "ns16550a", version: 1)) {
            try destination.state.preflight(snapshotTail: withSubsection)
        }
        // A compatible snapshot passes.
        let same = try TestMachine(r2.resolve("sandbox"), release: 2)
        try same.state.preflight(snapshotTail: bytes)
    }

    @Test func restoringIntoAnotherMachineTypeIsRefusedLoudly() throws {
        let bytes = try TestMachine(r2.resolve("sandbox"), release: 2).snapshot()
        let destination = try TestMachine(r2.resolve("virt-1.0"), release: 2)
        #expect(throws: VMStateError.machineTypeMismatch(received: "sandbox", local: "virt-1.0")) {
            try destination.load(bytes)
        }
    }

    @Test func sectionTheDestinationDoesNotHave() throws {
        // A stream with a timer section, read by a board that has no timer.
        let bytes = try TestMachine(r2.resolve("sandbox"), release: 2).snapshot()
        let noTimer = MachineType(
            name: "sandbox", description: "", release: "2.0", defaultRAMSize: 16 << 10,
            devices: [DeviceSpec(R2.UART.self, id: "uart0")])
        let destination = try TestMachine(noTimer, release: 2)
        #expect(throws: VMStateError.unknownSection(name: "test-timer", instanceID: 0)) { try destination.load(bytes) }
    }

    @Test func truncatedStreamAndWrongMagic() throws {
        let bytes = try TestMachine(r2.resolve("sandbox"), release: 2).snapshot()
        let destination = try TestMachine(r2.resolve("sandbox"), release: 2)
        let truncated = #expect(throws: VMStateError.self) { try destination.load(Array(bytes.prefix(bytes.count / 2))) }
        if case .unexpectedEndOfStream = truncated {} else { Issue.record("got \(String(describing: truncated))") }
        var wrong = bytes
        wrong[3] = 0x4e
        #expect(throws: VMStateError.notAMigrationStream(magic: 0x5145_564e)) { try destination.load(wrong) }
    }

    @Test func staticCheckerPassesBothWaysForVersionedAndFailsBackwardForUnversioned() throws {
        let old = try r1.resolve("virt-1.0").vmstateDump()
        let new = try r2.resolve("virt-1.0").vmstateDump()
        #expect(try VMStateCheck.check(old: old, new: new).problems == [])
        // The new subsection is "not found" backward: it is only sent when needed,
        // which the static checker cannot know (QEMU's checker says the same).
        let backward = try VMStateCheck.check(old: new, new: old).problems
        #expect(backward.map(\.message) == ["Section \"ns16550a\" Description \"ns16550a\": Entry \"Subsections\" missing"])
        let sandboxBackward = try VMStateCheck.check(
            old: r2.resolve("sandbox").vmstateDump(),
            new: r1.resolve("sandbox").vmstateDump())
        #expect(sandboxBackward.problems.contains { $0.message == "Section \"test-timer\" version error: 2 > 1" })
    }
}
