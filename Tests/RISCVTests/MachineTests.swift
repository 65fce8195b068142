// Loaders, the device tree and dirty-page tracking.
import Foundation
import Synchronization
import TestBoards
import Testing

@testable import RISCV

@Suite struct LoaderTests {
    static func ram() throws -> GuestRAM { try GuestRAM(region: VirtMemoryMap.dram(size: 4 << 20)) }
    static let valid: [UInt8] = [UInt8](FileManager.default.contents(atPath: Guests.path("timer.elf")) ?? Data())

    @Test func loadsAGuest() throws {
        let image = try ImageLoader.loadELF(LoaderTests.valid, into: try LoaderTests.ram())
        #expect(image.entry == 0x8000_0000)
    }

    static func patched(_ offset: Int, _ bytes: [UInt8]) -> [UInt8] {
        var b = valid
        b.replaceSubrange(offset..<offset + bytes.count, with: bytes)
        return b
    }

    @Test(arguments: [
        ("truncated header", Array(valid.prefix(20))),
        ("bad magic", patched(0, [0x7f, 0x45, 0x4c, 0x47])),
        ("32-bit class", patched(4, [1])),
        ("big-endian", patched(5, [2])),
        ("wrong machine", patched(18, [0x3e, 0])),
        ("program headers past the end", patched(32, [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])),
        ("huge phnum", patched(56, [0xff, 0xff])),
        ("bad phentsize", patched(54, [0x20, 0])),
        ("truncated segments", Array(valid.prefix(200))),
    ])
    func rejectsCorruptELF(what: String, bytes: [UInt8]) throws {
        #expect(throws: MachineError.self, "\(what)") { try ImageLoader.loadELF(bytes, into: try LoaderTests.ram()) }
    }

    @Test func rejectsImageLargerThanRAM() throws {
        // The first PT_LOAD's p_memsz := 1 GiB.
        let v = LoaderTests.valid
        let phoff = Int(v[32]) | Int(v[33]) << 8
        let load = try #require((0..<Int(v[56])).map { phoff + 56 * $0 }.first { v[$0] == 1 && v[$0 + 1] == 0 })
        let b = LoaderTests.patched(load + 40, [0, 0, 0, 0x40, 0, 0, 0, 0])
        #expect(throws: MachineError.self) { try ImageLoader.loadELF(b, into: try LoaderTests.ram()) }
        #expect(throws: MachineError.self) {
            try ImageLoader.loadRaw([UInt8](repeating: 1, count: 5 << 20), at: 0x8000_0000, into: try LoaderTests.ram())
        }
    }

    @Test func randomCorruptionNeverCrashes() throws {
        var rng = SplitMix64(seed: 0x454c_4621)  // the same corruptions on every run
        let ram = try LoaderTests.ram()
        for _ in 0..<500 {
            var b = LoaderTests.valid
            for _ in 0..<8 { b[Int.random(in: 0..<120, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            _ = try? ImageLoader.loadELF(b, into: ram)
        }
    }
}

@Suite struct DeviceTreeTests {
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/dtc"), "needs dtc (device-tree-compiler)"))
    func dtcReadsItCleanly() throws {
        let m = try VirtMachine()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("emupanel-\(getpid()).dtb").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(m.deviceTree))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/dtc")
        p.arguments = ["-I", "dtb", "-O", "dts", path]
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let dts = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let warnings = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(warnings.isEmpty, "\(warnings)")
        for needle in [
            "mmu-type = \"riscv,sv39\"", "timebase-frequency = <0x989680>", "stdout-path = \"/soc/serial@10000000\"",
            "clock-frequency", "riscv,isa = \"rv64imac_zicsr_zifencei\"", "plic@c000000",
            "clint@2000000", "test@100000", "reg = <0x00 0x80000000 0x00 0x8000000>",
        ] {
            #expect(dts.contains(needle), "\(needle)")
        }
    }

    @Test func placedLikeQEMU() throws {
        let m = try VirtMachine()
        #expect(m.deviceTreeAddress == 0x87e0_0000)
    }
}

@Suite struct DirtyPageTests {
    @Test func storesMarkPagesAndFetchClears() throws {
        let m = try bootGuest("mempattern-forever.elf", icount: true)
        m.console = SerialConsole { _ in }
        m.setDirtyLogging(true)
        _ = m.run(maxInstructions: 3_000_000)
        let first = m.fetchAndClearDirtyPages()
        let count = first.reduce(0) { $0 + $1.nonzeroBitCount }
        // One pass touches all 4096 pattern pages; a few more for stack and data.
        #expect(count >= 4096)
        #expect(m.fetchAndClearDirtyPages().allSatisfy { $0 == 0 })
        _ = m.run(maxInstructions: 6_000_000)
        #expect(m.fetchAndClearDirtyPages().reduce(0) { $0 + $1.nonzeroBitCount } >= 4096)
        m.setDirtyLogging(false)
        _ = m.run(maxInstructions: 9_000_000)
        #expect(m.fetchAndClearDirtyPages().allSatisfy { $0 == 0 })
    }

    /// The panel counts written pages for its graphs while a transfer takes the log: each sees every page.
    @Test func countingAndATransferEachSeeEveryPage() throws {
        let m = try bootGuest("mempattern-forever.elf", icount: true)
        m.console = SerialConsole { _ in }
        m.setDirtyPageCounting(true)
        _ = m.run(maxInstructions: 3_000_000)
        #expect(m.takeDirtyPageCount() >= 4096)
        #expect(m.takeDirtyPageCount() == 0)
        m.setDirtyLogging(true)
        _ = m.run(maxInstructions: 6_000_000)
        let logged = m.fetchAndClearDirtyPages().reduce(0) { $0 + $1.nonzeroBitCount }
        #expect(logged >= 4096)
        #expect(m.takeDirtyPageCount() >= logged)
        // The transfer ends; counting goes on.
        m.setDirtyLogging(false)
        _ = m.run(maxInstructions: 9_000_000)
        #expect(m.takeDirtyPageCount() >= 4096)
        #expect(m.fetchAndClearDirtyPages().allSatisfy { $0 == 0 })
        m.setDirtyPageCounting(false)
        _ = m.run(maxInstructions: 12_000_000)
        #expect(m.takeDirtyPageCount() == 0)
        #expect(m.ram.residentBytes() >= 16 << 20)
    }
}

@Suite struct RunControlTests {
    @Test func pauseResumeStopFromAnotherThread() throws {
        let out = OutputCollector()
        let console = SerialConsole { out.append($0) }
        let run = startMachine(try bootGuest("mempattern-forever.elf"), console: console)
        #expect(out.wait(for: "pass 16 ok"))
        run.control.pause()
        var waited = 0
        while !run.control.isPaused && waited < 2000 { usleep(1000); waited += 1 }
        #expect(run.control.isPaused)
        let frozen = out.text
        usleep(100_000)
        #expect(out.text == frozen)
        let dirty = run.control.syncDirtyPages()
        #expect(dirty != nil)
        let seen = Mutex<UInt64>(0)
        run.control.perform { machine in seen.withLock { $0 = machine.hart.state.retired } }
        waited = 0
        while seen.withLock({ $0 }) == 0 && waited < 2000 { usleep(1000); waited += 1 }
        #expect(seen.withLock { $0 } > 0)
        run.control.resume()
        #expect(out.wait(for: "pass 32 ok"))
        run.control.stop()
        #expect(run.wait() == .stopped)
    }
}
