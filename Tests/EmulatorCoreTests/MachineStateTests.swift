// The machine-state aggregator: live migration driven by dirty-page sets,
// snapshots, and property-based round trips of whole machines.
import PropertyBased
import Testing
import VMState

@testable import EmulatorCore

@Suite struct MachineStateTests {
    let r2 = try! MachineRegistry(R2.machineTypes)

    @Test func liveMigrationWithDirtyPageIterations() throws {
        let source = try TestMachine(r2.resolve("sandbox"), release: 2)
        for i in 0..<source.ram.count { source.ram[i] = pattern(i) }
        let sink = MemorySink()
        let migration = try source.state.startMigration(to: sink)
        try migration.iterate(dirtyPages: RAMPage.all(in: source.state.ramBlocks))
        let firstPass = migration.ramStats
        #expect(firstPass.normalPages == 4)
        // The guest keeps running: it dirties pages 1 and 3, then page 3 again.
        source.ram[4096] = 0xaa
        source.ram[3 * 4096 + 5] = 0xbb
        try migration.iterate(dirtyPages: [RAMPage(block: 0, index: 1), RAMPage(block: 0, index: 3)])
        source.ram[3 * 4096 + 6] = 0xcc
        source.device("timer", as: R2.Timer.self).state = .init(mtimecmp: 5, mtime: 6)
        let stats = try migration.complete(remainingDirtyPages: [RAMPage(block: 0, index: 3)])
        #expect(stats.normalPages == 7)
        #expect(migration.bytesWritten == UInt64(sink.bytes.count))

        let destination = try TestMachine(r2.resolve("sandbox"), release: 2)
        try destination.load(sink.bytes)
        #expect(destination.ramBytes == source.ramBytes)
        #expect(destination.device("timer", as: R2.Timer.self).state == .init(mtimecmp: 5, mtime: 6))
    }

    @Test func zeroPagesAreMarkersNotPages() throws {
        let source = try TestMachine(r2.resolve("sandbox"), release: 2)  // RAM all zero
        let bytes = try source.snapshot()
        #expect(bytes.count < 1000)
        let destination = try TestMachine(r2.resolve("sandbox"), release: 2) { _ in 0x11 }
        try destination.load(bytes)
        #expect(destination.ramBytes.allSatisfy { $0 == 0 })
    }

    @Test func machineDumpListsStatefulDevicesOnly() throws {
        let dump = try JSONValue.parse(try r2.resolve("virt-1.0").vmstateDump())
        #expect(dump.objectValue?.map(\.0) == ["vmschkmachine", "ns16550a"])
        #expect(dump["vmschkmachine"]?["Name"] == .string("virt-1.0"))
    }

    @Test func sameDriverTwiceGetsInstanceIDs() throws {
        let two = MachineType(
            name: "two-uarts", description: "", release: "2.0", defaultRAMSize: 4096,
            devices: [DeviceSpec(R2.UART.self, id: "uart0"), DeviceSpec(R2.UART.self, id: "uart1")])
        let source = try TestMachine(two, release: 2)
        let entries = try source.state.saveStateEntries()
        #expect(entries.map(\.instanceID) == [0, 1])
        #expect(entries.map(\.idstr) == ["ns16550a", "ns16550a"])
    }

    @Test func uartStatesRoundTripThroughSnapshots() async {
        await propertyCheck(
            count: 50, input: Gen.uint8(), Gen.uint8(), Gen.uint8(in: 1...255).array(of: 16),
            Gen.element(of: [16, 32, 64] as [UInt32]), Gen.uint64(), Gen.uint64()
        ) {
            ier, lsr, fifo, depth, mtimecmp, mtime in
            let registry = try MachineRegistry(R2.machineTypes)
            let source = try TestMachine(registry.resolve("sandbox"), release: 2) { pattern($0 * 7) }
            let uart = R2.UART.State(ier: ier, lsr: lsr, fifo: fifo, fifoDepth: depth ?? 16)
            source.device("uart0", as: R2.UART.self).state = uart
            source.device("timer", as: R2.Timer.self).state = .init(mtimecmp: mtimecmp, mtime: mtime)
            let destination = try TestMachine(registry.resolve("sandbox"), release: 2)
            try destination.load(try source.snapshot())
            #expect(destination.device("uart0", as: R2.UART.self).state == uart)
            #expect(destination.device("timer", as: R2.Timer.self).state == .init(mtimecmp: mtimecmp, mtime: mtime))
            #expect(destination.ramBytes == source.ramBytes)
        }
    }
}
