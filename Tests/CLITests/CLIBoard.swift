// A tiny machine for the command-line tests: a UART whose FIFO depth travels in a
// subsection, a timer, and four pages of RAM of which two are zero.
import EmulatorCore
import Foundation
import TestBoards
import VMState

enum CLIBoard {
    static let machineType = MachineType(
        name: "cli-1.0", description: "command-line test board", release: "1.0", defaultRAMSize: 4 * 4096,
        devices: [DeviceSpec(TestUART.self, id: "uart0"), DeviceSpec(TestTimer.self, id: "timer")])

    /// The machine built and registered, RAM patterned without zero bytes in its first two pages.
    final class Machine {
        let ram: UnsafeMutableRawBufferPointer
        let uart = TestUART()
        let timer = TestTimer()
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
