// The virt machine's state through QEMU's stream format: every device registers with a
// state description, a stream taken at any instruction restores into a fresh machine, and
// with icount the restored run matches a straight one byte for byte.
import EmulatorCore
import Foundation
import Testing
import VMState

@testable import RISCV

@Suite(.serialized) struct QEVMSnapshotTests {
    let virt = try! VirtMachineTypes.registry.resolve("virt")

    func machine(_ elf: String, output: OutputCollector) throws -> VirtMachine {
        let m = try bootGuest(elf, icount: true)
        m.console = SerialConsole { output.append($0) }
        return m
    }

    @Test func builtInMachineTypesAreSoundAndTiered() throws {
        let registry = VirtMachineTypes.registry
        #expect(try registry.resolve("virt").name == "virt-1.2")
        #expect(try registry.resolve("virt-1.1").tier == .versioned)
        #expect(try registry.resolve("virt-1.0").tier == .versioned)
        #expect(try registry.resolve("sandbox").tier == .unversioned)
    }

    @Test(arguments: [("timer.elf", 0.37), ("mempattern.elf", 0.5), ("sv39.elf", 0.6), ("bench-quick.elf", 0.45)])
    func streamAtAnyInstructionRestoresIdentically(elf: String, fraction: Double) throws {
        let fullOut = OutputCollector()
        let full = try machine(elf, output: fullOut)
        let straight = full.run(maxInstructions: 50_000_000)
        let total = full.hart.state.retired

        let splitOut = OutputCollector()
        let first = try machine(elf, output: splitOut)
        let cut = max(1, UInt64(Double(total) * fraction))
        #expect(first.run(maxInstructions: cut) == .instructionLimit)
        let sink = MemorySink()
        _ = try first.machineState(for: virt).saveSnapshot(to: sink)

        // A restore starts from a machine that ran something else: nothing of it may survive.
        let second = try machine(elf, output: OutputCollector())
        _ = second.run(maxInstructions: 1000)
        second.console = SerialConsole { splitOut.append($0) }
        _ = try second.machineState(for: virt).load(from: MemorySource(sink.bytes))
        second.stateDidLoad()
        #expect(second.deviceStates == first.deviceStates)
        #expect(second.run(maxInstructions: 50_000_000) == straight)
        #expect(splitOut.text == fullOut.text)
        #expect(second.hart.state == full.hart.state)
        #expect(second.hart.state.retired == total)
    }

    /// A stream carries only the pages the host populated (the rest of RAM is zero); a load
    /// zeroes RAM first, so what the destination held before (another guest's code and data)
    /// cannot show through the gaps.
    @Test func populatedPagesOnlyStreamRestoresOverAnotherGuest() throws {
        let fullOut = OutputCollector()
        let full = try machine("mempattern.elf", output: fullOut)
        let straight = full.run(maxInstructions: 50_000_000)
        let total = full.hart.state.retired

        let splitOut = OutputCollector()
        let first = try machine("mempattern.elf", output: splitOut)
        #expect(first.run(maxInstructions: total / 2) == .instructionLimit)
        let pages = first.populatedPages()
        #expect(pages.count > 0 && pages.count < first.ram.pageCount / 4, "\(pages.count) of \(first.ram.pageCount) pages")
        let sink = MemorySink()
        let stats = try first.machineState(for: virt).saveSnapshot(to: sink, pages: pages)
        #expect(stats.normalPages + stats.duplicatePages == UInt64(pages.count))

        let second = try machine("bench-quick.elf", output: OutputCollector())
        _ = second.run(maxInstructions: 2_000_000)
        try second.ram.write(Array(repeating: 0xa5, count: GuestRAM.pageSize), at: second.ram.region.base + 96 << 20)
        second.console = SerialConsole { splitOut.append($0) }
        try second.loadState(from: MemorySource(sink.bytes), as: virt)
        #expect(second.ram.read(second.ram.region.base + 96 << 20, count: 8) == Array(repeating: 0, count: 8))
        #expect(second.run(maxInstructions: 50_000_000) == straight)
        #expect(splitOut.text == fullOut.text)
        #expect(second.hart.state == full.hart.state)
    }

    @Test func populatedPagesFollowWhatTheHostTouched() throws {
        let m = try machine("timer.elf", output: OutputCollector())
        let far = m.ram.region.base + UInt64(m.ram.size) - UInt64(GuestRAM.pageSize)
        let farIndex = m.ram.pageCount - 1
        #expect(!m.populatedPages()[farIndex])
        try m.ram.write([1], at: far)
        #expect(m.populatedPages()[farIndex])
        m.ram.clear()
        #expect(!m.populatedPages()[farIndex], "a cleared page goes back to the host")
    }

    /// A guest that reboots while a transfer runs: the reset zeroes RAM and reloads the images
    /// behind the CPU's back, so it must log what it changed or the copy keeps the old contents.
    @Test func resetDuringATransferLogsEveryPageItChanged() throws {
        let m = try machine("timer.elf", output: OutputCollector())
        _ = m.run(maxInstructions: 10_000)
        let far = m.ram.region.base + UInt64(m.ram.size) - UInt64(GuestRAM.pageSize)
        try m.ram.write([0xab], at: far)
        m.setDirtyLogging(true)
        defer { m.setDirtyLogging(false) }
        _ = m.takeDirtyPages()
        try m.reset()
        let dirty = m.takeDirtyPages()
        #expect(dirty[m.ram.pageCount - 1], "the cleared page")
        #expect(dirty[0], "the reloaded image")
        #expect(m.ram.read(far, count: 1) == [0])
    }

    @Test func streamIsRefusedByAnotherMachineTypeBeforeAnythingChanges() throws {
        let output = OutputCollector()
        let source = try machine("timer.elf", output: output)
        _ = source.run(maxInstructions: 10_000)
        let sink = MemorySink()
        _ = try source.machineState(for: virt).saveSnapshot(to: sink)

        let target = try machine("timer.elf", output: output)
        let before = target.deviceStates
        let sandbox = try VirtMachineTypes.registry.resolve("sandbox")
        #expect(throws: VMStateError.self) {
            _ = try target.machineState(for: sandbox).load(from: MemorySource(sink.bytes))
        }
        #expect(target.deviceStates == before)
    }

    /// Cut points that are hard for a restore: inside the timer's trap handler (MIE cleared, MPIE
    /// set by the trap), and with the timer interrupt pending but not yet taken.
    @Test(arguments: ["in-handler", "interrupt-pending"])
    func streamInsideATrapHandlerOrWithAnInterruptPending(_ situation: String) throws {
        let fullOut = OutputCollector()
        let full = try machine("timer.elf", output: fullOut)
        _ = full.run(maxInstructions: 50_000_000)
        let total = full.hart.state.retired

        // Find the first instruction count at which the situation holds.
        let probe = try machine("timer.elf", output: OutputCollector())
        var cut: UInt64 = 0
        while cut < total {
            cut += 1
            _ = probe.run(maxInstructions: cut)
            let state = probe.hart.state
            let found: Bool
            switch situation {
            case "in-handler":
                found =
                    state.priv == .machine && state.mstatus & Hart.mstatusMIE == 0 && state.mstatus & Hart.mstatusMPIE != 0
                    && state.mcause == (1 << 63 | 7)
            default:
                found = (state.mip | probe.hart.scratch.pointee.mipLines) & state.mie & Hart.irqMTI != 0
            }
            if found { break }
        }
        #expect(cut < total, "the guest reaches \(situation)")

        let splitOut = OutputCollector()
        let first = try machine("timer.elf", output: splitOut)
        #expect(first.run(maxInstructions: cut) == .instructionLimit)
        let sink = MemorySink()
        _ = try first.machineState(for: virt).saveSnapshot(to: sink)
        let second = try machine("timer.elf", output: OutputCollector())
        second.console = SerialConsole { splitOut.append($0) }
        _ = try second.machineState(for: virt).load(from: MemorySource(sink.bytes))
        second.stateDidLoad()
        _ = second.run(maxInstructions: 50_000_000)
        #expect(splitOut.text == fullOut.text)
        #expect(second.hart.state == full.hart.state)
    }
}
