// icount determinism for Linux (SPEC §3, issue 14 item 6): a boot saved at instruction N
// and restored into a fresh machine prints exactly what a straight run prints after N, and
// ends in the same state, for N in OpenSBI, mid-kernel and at the shell. Console input is
// typed at fixed instruction counts, so both runs see it at the same instruction.
import EmulatorCore
import Foundation
import Headless
import Testing
import VMState

@testable import RISCV

@Suite(.serialized) struct LinuxDeterminismTests {
    /// Where the straight run types a command (instruction count → text).
    /// The shell's first prompt comes after ~45 M instructions.
    static let typing: [(at: UInt64, text: String)] = [
        (60_000_000, "echo typed at a fixed instruction\n"),
        (70_000_000, "uname\n"),
    ]
    static let end: UInt64 = 80_000_000

    func machine(output: OutputCollector) throws -> VirtMachine {
        let m = try makeMachine(LinuxGuest.options(icount: true))
        m.console = SerialConsole { output.append($0) }
        return m
    }

    /// Runs `machine` to `end`, typing `typing` on the way; stops at `stop` first when given.
    func run(_ machine: VirtMachine, to end: UInt64, console: SerialConsole?) -> RunExit {
        var exit = RunExit.instructionLimit
        for step in Self.typing where step.at > machine.hart.state.retired && step.at <= end {
            exit = machine.run(maxInstructions: step.at)
            guard exit == .instructionLimit else { return exit }
            // Queued now, taken by the UART at the first slice boundary of the next run.
            machine.console?.send(step.text)
        }
        return machine.run(maxInstructions: end)
    }

    @Test(.enabled(if: LinuxGuest.available)) func savedAnywhereAndRestoredPrintsWhatAStraightRunPrints() throws {
        let straightOut = OutputCollector()
        let straight = try machine(output: straightOut)
        // Snapshots on the way: OpenSBI, early kernel, late kernel, at the shell before and
        // between the typed commands.
        let cuts: [UInt64] = [3_000_000, 25_000_000, 55_000_000, 65_000_000]
        var streams: [(cut: UInt64, bytes: [UInt8], printed: Int)] = []
        for cut in cuts {
            #expect(run(straight, to: cut, console: straight.console) == .instructionLimit)
            let sink = MemorySink()
            _ = try straight.machineState().saveSnapshot(to: sink)
            streams.append((cut, sink.bytes, straightOut.text.utf8.count))
        }
        #expect(run(straight, to: Self.end, console: straight.console) == .instructionLimit)
        let full = straightOut.text
        #expect(full.contains("typed at a fixed instruction\r\n"), "the shell did not answer by instruction \(Self.end): \(full.suffix(1500))")

        for stream in streams {
            let restoredOut = OutputCollector()
            let restored = try machine(output: OutputCollector())
            try restored.loadState(from: MemorySource(stream.bytes), as: restored.machineType)
            restored.console = SerialConsole { restoredOut.append($0) }
            #expect(restored.hart.state.retired == stream.cut)
            #expect(run(restored, to: Self.end, console: restored.console) == .instructionLimit)
            let after = String(decoding: Array(full.utf8).dropFirst(stream.printed), as: UTF8.self)
            #expect(restoredOut.text == after, "restored at \(stream.cut)")
            #expect(restored.hart.state == straight.hart.state, "restored at \(stream.cut)")
            #expect(restored.deviceStates == straight.deviceStates, "restored at \(stream.cut)")
        }
    }
}
