// The bare-metal guests pass on emupanel and print exactly what they print
// under `qemu-system-riscv64 -M virt -bios none -kernel GUEST -nographic`.
import Foundation
import Testing

@testable import RISCV

struct GuestCase: Sendable, CustomStringConvertible {
    let elf: String
    let input: String
    let after: String
    var description: String { elf }
}

@Suite(.serialized) struct GuestTests {
    static let cases = [
        GuestCase(elf: "mempattern.elf", input: "", after: ""),
        GuestCase(elf: "bench-quick.elf", input: "", after: ""),
        GuestCase(elf: "timer.elf", input: "", after: ""),
        GuestCase(elf: "echo.elf", input: "hello, emupanel\nq", after: "ready"),
        GuestCase(elf: "sv39.elf", input: "", after: ""),
        GuestCase(elf: "tlbflush.elf", input: "", after: ""),
        GuestCase(elf: "traploop-quick.elf", input: "", after: ""),
    ]

    @Test(arguments: cases)
    func passes(_ c: GuestCase) throws {
        let r = try runGuest(c.elf, input: c.input, after: c.after)
        if c.elf == "timer.elf" {
            // In real time a loaded host (CI runs test processes side by side) can make the guest
            // miss a 10 ms deadline; what must hold regardless is that time never goes backwards.
            // Lost ticks are checked exactly in icount mode below.
            #expect(r.output.contains("time went backwards 0"), "\(r.output)")
        } else {
            #expect(r.outcome == .passed, "\(r.output)")
        }
    }

    @Test(arguments: cases)
    func passesInICountMode(_ c: GuestCase) throws {
        let r = try runGuest(c.elf, input: c.input, after: c.after, icount: true)
        #expect(r.outcome == .passed, "\(r.output)")
    }

    /// Both run in icount mode so host load cannot make the timer guest lose
    /// ticks on either side (its real-time run is `passes`).
    @Test(.enabled(if: QEMU.available), arguments: cases)
    func outputMatchesQEMU(_ c: GuestCase) throws {
        let ours = try runGuest(c.elf, input: c.input, after: c.after, icount: true)
        let qemu = try QEMU.runGuest(c.elf, input: c.input, after: c.after, icount: c.elf == "timer.elf")
        #expect(qemu.status == 0)
        #expect(ours.output == qemu.output)
    }

    @Test func failCodeComesFromTheFinisher() throws {
        // A guest that writes code 7 << 16 | 0x3333: li a0,0x73333; li a1,0x100000; sw a0,0(a1)
        let t = try TestMachine([0x0007_3537, 0x3335_051b, 0x0010_05b7, 0x00a5_a023, 0x0000_006f])
        #expect(t.machine.run(maxInstructions: 100) == .finisherFail(code: 7))
    }

    @Test func instructionLimitIsReported() throws {
        let r = try runGuest("mempattern-forever.elf", maxInstructions: 2_000_000)
        #expect(r.outcome == .instructionLimit)
        #expect(r.outcome.exitStatus == 124)
        #expect(r.instructions == 2_000_000)
    }
}
