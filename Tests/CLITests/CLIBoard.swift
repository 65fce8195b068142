// A tiny machine for the command-line tests: a UART whose FIFO depth travels in a
// subsection, a timer, and four pages of RAM of which two are zero.
import EmulatorCore
import Foundation
import VMState

enum CLIBoard {
    final class UART: Device {
        struct State: Equatable, Sendable {
            var ier: UInt8 = 0
            var lsr: UInt8 = 0x60
            var fifoDepth: UInt32 = 16
        }
        static let driver = "ns16550a"
        static let migration = DeviceMigration<State>.vmstate(VMStateDescription(
            name: "ns16550a", versionID: 2, minimumVersionID: 1,
            fields: [.uint8(\.ier), .uint8(\.lsr, since: 2)],
            subsections: [.init(VMStateDescription(name: "ns16550a/fifo-depth", versionID: 1, minimumVersionID: 1,
                                                   fields: [.uint32(\.fifoDepth)]),
                                needed: { $0.fifoDepth != 16 })]))
        var state = State()
    }

    final class Timer: Device {
        struct State: Equatable, Sendable { var mtimecmp: UInt64 = .max }
        static let driver = "test-timer"
        static let migration = DeviceMigration<State>.vmstate(VMStateDescription(
            name: "test-timer", versionID: 1, minimumVersionID: 1, fields: [.uint64(\.mtimecmp)]))
        var state = State()
    }

    static let machineType = MachineType(
        name: "cli-1.0", description: "command-line test board", release: "1.0", defaultRAMSize: 4 * 4096,
        devices: [DeviceSpec(UART.self, id: "uart0"), DeviceSpec(Timer.self, id: "timer")])

    /// The machine built and registered, RAM patterned without zero bytes in its first two pages.
    final class Machine {
        let ram: UnsafeMutableRawBufferPointer
        let uart = UART()
        let timer = Timer()
        let state: MachineState

        init() throws {
            ram = .allocate(byteCount: Int(machineType.defaultRAMSize), alignment: 4096)
            for i in 0..<ram.count { ram[i] = i < 2 * 4096 ? UInt8(i % 255 + 1) : 0 }
            state = MachineState(machineType: machineType, ramBlocks: [RAMBlock(idstr: "cli.ram", memory: ram)])
            try state.register(uart, id: "uart0")
            try state.register(timer, id: "timer")
        }

        deinit { ram.deallocate() }

        func save(to path: String) throws {
            let sink = MemorySink()
            try state.saveSnapshot(to: sink)
            try Data(sink.bytes).write(to: URL(fileURLWithPath: path))
        }
    }
}
