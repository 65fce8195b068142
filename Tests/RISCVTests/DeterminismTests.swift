// icount mode (SPEC §3): a run, and a run snapshotted at any instruction and
// restored into a fresh machine, give identical output, final state and
// instruction count.
import Foundation
import Testing

@testable import RISCV

@Suite(.serialized) struct DeterminismTests {
    func machine(_ elf: String, output: OutputCollector) throws -> VirtMachine {
        let m = try bootGuest(elf, icount: true)
        m.console = SerialConsole { output.append($0) }
        return m
    }

    @Test(arguments: [
        ("timer.elf", 0.37), ("timer.elf", 0.81), ("mempattern.elf", 0.5), ("sv39.elf", 0.6),
        ("traploop-quick.elf", 0.43), ("tlbflush.elf", 0.29),
    ])
    func snapshotAnywhereRestoresIdentically(elf: String, fraction: Double) throws {
        let fullOut = OutputCollector()
        let full = try machine(elf, output: fullOut)
        #expect(full.run() == .finisherPass)
        let total = full.hart.state.retired

        let splitOut = OutputCollector()
        let first = try machine(elf, output: splitOut)
        let cut = UInt64(Double(total) * fraction)
        #expect(first.run(maxInstructions: cut) == .instructionLimit)
        let devices = first.deviceStates
        let ram = Array(UnsafeRawBufferPointer(start: first.ram.bytes, count: first.ram.size))

        let second = try machine(elf, output: splitOut)
        ram.withUnsafeBytes { second.ram.bytes.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        second.deviceStates = devices
        #expect(second.deviceStates == devices)
        #expect(second.run() == .finisherPass)

        #expect(splitOut.text == fullOut.text)
        #expect(second.hart.state == full.hart.state)
        #expect(second.hart.state.retired == total)
    }

    @Test func twoRunsAreIdentical() throws {
        let a = OutputCollector()
        let b = OutputCollector()
        let m1 = try machine("timer.elf", output: a)
        let m2 = try machine("timer.elf", output: b)
        _ = m1.run()
        _ = m2.run()
        #expect(a.text == b.text)
        #expect(m1.deviceStates == m2.deviceStates)
    }
}
