// Helpers shared by the RISCV tests: a tiny instruction encoder, a machine
// that runs a handful of instructions, guest runs with captured output, and
// QEMU as the reference when it is installed.
import Foundation
import Headless
import Synchronization

@testable import RISCV

enum Asm {
    static func r(_ f7: UInt32, _ rs2: UInt32, _ rs1: UInt32, _ f3: UInt32, _ rd: UInt32, _ op: UInt32) -> UInt32 {
        f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op
    }
    static func i(_ imm: Int32, _ rs1: UInt32, _ f3: UInt32, _ rd: UInt32, _ op: UInt32) -> UInt32 {
        UInt32(bitPattern: imm << 20) | rs1 << 15 | f3 << 12 | rd << 7 | op
    }
    static func s(_ imm: Int32, _ rs2: UInt32, _ rs1: UInt32, _ f3: UInt32) -> UInt32 {
        let u = UInt32(bitPattern: imm)
        return (u >> 5 & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (u & 0x1f) << 7 | 0x23
    }
    static func addi(_ rd: UInt32, _ rs1: UInt32, _ imm: Int32) -> UInt32 { i(imm, rs1, 0, rd, 0x13) }
    static func ld(_ rd: UInt32, _ rs1: UInt32, _ imm: Int32) -> UInt32 { i(imm, rs1, 3, rd, 0x03) }
    static func lw(_ rd: UInt32, _ rs1: UInt32, _ imm: Int32) -> UInt32 { i(imm, rs1, 2, rd, 0x03) }
    static func sd(_ rs2: UInt32, _ rs1: UInt32, _ imm: Int32) -> UInt32 { s(imm, rs2, rs1, 3) }
    static func mext(_ f3: UInt32, _ rd: UInt32, _ rs1: UInt32, _ rs2: UInt32, word: Bool = false) -> UInt32 {
        r(1, rs2, rs1, f3, rd, word ? 0x3b : 0x33)
    }
    /// AMO: funct5, width 2 = W / 3 = D.
    static func amo(_ f5: UInt32, _ width: UInt32, _ rd: UInt32, _ rs1: UInt32, _ rs2: UInt32) -> UInt32 {
        r(f5 << 2, rs2, rs1, width, rd, 0x2f)
    }
    static func csrrs(_ rd: UInt32, _ csr: UInt32, _ rs1: UInt32) -> UInt32 { csr << 20 | rs1 << 15 | 2 << 12 | rd << 7 | 0x73 }
    static func csrrw(_ rd: UInt32, _ csr: UInt32, _ rs1: UInt32) -> UInt32 { csr << 20 | rs1 << 15 | 1 << 12 | rd << 7 | 0x73 }
    static let ecall: UInt32 = 0x73
    static let mret: UInt32 = 0x3020_0073
    static let sret: UInt32 = 0x1020_0073
    static let nop: UInt32 = 0x13
}

/// A small machine for instruction-level tests: code at the start of DRAM.
final class TestMachine {
    let machine: VirtMachine
    var base: UInt64 { machine.ram.region.base }

    init(_ words: [UInt32], memoryMiB: Int = 2) throws {
        machine = try VirtMachine(configuration: MachineConfiguration(memoryMiB: memoryMiB, clock: .defaultICount))
        try place(words, at: machine.ram.region.base)
        machine.hart.reset(pc: machine.ram.region.base)
    }

    func place(_ words: [UInt32], at address: UInt64) throws {
        try machine.ram.write(words.flatMap { w in (0..<4).map { UInt8(truncatingIfNeeded: w >> (8 * $0)) } }, at: address)
    }

    var state: Hart.State {
        get { machine.hart.state }
        set { machine.hart.state = newValue }
    }

    subscript(reg: Int) -> UInt64 {
        get { machine.hart.state.x[reg] }
        set { machine.hart.state.x[reg] = newValue }
    }

    /// Runs `count` instructions (traps count as one step each).
    func step(_ count: Int) {
        for _ in 0..<count {
            let before = machine.hart.state.retired
            _ = machine.hart.run(budget: 1)
            if machine.hart.state.retired == before { continue }
        }
    }
}

enum Guests {
    static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("guests")
    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
}

/// Collects the guest's serial output.
final class OutputCollector: Sendable {
    private let bytes = Mutex<[UInt8]>([])
    var text: String { String(decoding: bytes.withLock { $0 }, as: UTF8.self) }
    func append(_ b: [UInt8]) { bytes.withLock { $0 += b } }

    /// Waits until the output contains `needle`.
    func wait(for needle: String, timeout: Double = 30) -> Bool {
        wait(timeout: timeout) { $0.contains(needle) }
    }

    func wait(timeout: Double = 30, until condition: (String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition(text) { return true }
            usleep(2000)
        }
        return false
    }

    /// Waits for the n-th occurrence of `needle`.
    func wait(for needle: String, count n: Int, timeout: Double = 30) -> Bool {
        wait(timeout: timeout) { $0.components(separatedBy: needle).count - 1 >= n }
    }
}

struct GuestResult {
    var outcome: RunOutcome
    var output: String
    var instructions: UInt64
}

/// A test guest's machine, built and booted without firmware (QEMU's `-bios none -kernel`).
func bootGuest(_ name: String, machine: String = "virt", icount: Bool = false, memoryMiB: Int = 128) throws -> VirtMachine {
    try RunOptions(machine: machine, bios: .none, kernel: Guests.path(name), memoryMiB: memoryMiB, icount: icount).makeMachine()
}

/// Starts a machine on its own CPU thread with `console` as its UART.
func startMachine(_ machine: VirtMachine, console: SerialConsole, maxInstructions: UInt64? = nil) -> LiveMachine {
    machine.console = console
    let live = LiveMachine(machine)
    live.start(maxInstructions: maxInstructions)
    return live
}

/// Runs a guest on its own thread; `input` is typed once `after` appears.
func runGuest(
    _ name: String, machine: String = "virt", input: String = "", after marker: String = "", icount: Bool = false,
    maxInstructions: UInt64? = nil
) throws -> GuestResult {
    let out = OutputCollector()
    let console = SerialConsole { out.append($0) }
    let run = startMachine(try bootGuest(name, machine: machine, icount: icount), console: console, maxInstructions: maxInstructions)
    if !input.isEmpty {
        _ = out.wait(for: marker)
        console.send(input)
    }
    let outcome = run.wait()
    return GuestResult(outcome: outcome, output: out.text, instructions: run.instructionsRetired)
}

enum QEMU {
    static let path = "/usr/bin/qemu-system-riscv64"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: path) }

    /// A QEMU virt machine with stdio as the serial console.
    final class Session {
        let process = Process()
        let stdin = Pipe()
        let stdout = Pipe()
        let output = OutputCollector()
        /// Signalled when QEMU's stdout reaches its end: everything it printed has been collected.
        private let drained = DispatchSemaphore(value: 0)

        init(arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: QEMU.path)
            process.arguments = ["-M", "virt", "-nographic"] + arguments
            process.standardInput = stdin
            process.standardOutput = stdout
            process.standardError = FileHandle.nullDevice
            try process.run()
            // A plain thread with blocking reads drains QEMU's stdout.
            let collector = output
            let fd = stdout.fileHandleForReading.fileDescriptor
            let drained = drained
            let reader = Thread {
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = read(fd, &buffer, buffer.count)
                    if n <= 0 { drained.signal(); return }
                    collector.append(Array(buffer[0..<n]))
                }
            }
            reader.start()
        }

        func send(_ text: String) { stdin.fileHandleForWriting.write(Data(text.utf8)) }

        /// Waits for exit (killing QEMU after `timeout`), returns the status.
        func finish(timeout: Double = 60) -> Int32 {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { usleep(5000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            _ = drained.wait(timeout: .now() + 10)
            return process.terminationStatus
        }
    }

    /// QEMU runs with `-icount` too (idle time warped through WFI, not slept), so a loaded host
    /// cannot make QEMU itself lose timer ticks.
    static func runGuest(_ name: String, input: String = "", after marker: String = "", icount: Bool = true) throws -> (status: Int32, output: String)
    {
        let clock = icount ? ["-icount", "shift=0,sleep=off"] : []
        let session = try Session(arguments: ["-bios", "none", "-kernel", Guests.path(name)] + clock)
        if !input.isEmpty {
            _ = session.output.wait(for: marker)
            session.send(input)
        }
        let status = session.finish()
        return (status, session.output.text)
    }
}

/// The machine `options` describe, built and booted.
func makeMachine(_ options: RunOptions) throws -> VirtMachine { try options.makeMachine() }
