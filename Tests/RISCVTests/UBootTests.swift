// Debian's OpenSBI fw_jump + S-mode U-Boot reach the prompt and answer
// commands exactly as they do under QEMU.
import Foundation
import Headless
import Testing

@testable import RISCV

enum UBoot {
    static let bios = DebianFirmware.openSBI
    static let kernel = DebianFirmware.uBoot
    static var available: Bool {
        FileManager.default.fileExists(atPath: bios) && FileManager.default.fileExists(atPath: kernel)
    }
    static let commands = ["version", "crc32 0x80200000 0x10000"]

    /// Stops autoboot, runs the commands; returns the transcript from the first prompt.
    static func session(send: (String) -> Void, output: OutputCollector) -> String? {
        guard output.wait(for: "Hit any key", timeout: 60) else { return nil }
        send("\n")
        // A prompt starts a line ("==> " in crc32's answer must not count).
        guard output.wait(for: "\r\n=> ", count: 1) else { return nil }
        for (i, command) in commands.enumerated() {
            send(command + "\n")
            guard output.wait(for: "\r\n=> ", count: i + 2) else { return nil }
        }
        let text = output.text
        guard let start = text.range(of: "=> ") else { return nil }
        return String(text[start.lowerBound...])
    }
}

@Suite(.serialized) struct UBootTests {
    @Test(.enabled(if: UBoot.available)) func bootsToPromptAndRunsCommands() throws {
        let out = OutputCollector()
        let console = SerialConsole { out.append($0) }
        let run = startMachine(try RunOptions(kernel: UBoot.kernel).makeMachine(), console: console)
        let transcript = UBoot.session(send: { console.send($0) }, output: out)
        run.control.stop()
        _ = run.wait()
        #expect(out.text.contains("OpenSBI v"))
        #expect(out.text.contains("Boot HART MIDELEG"))
        let t = try #require(transcript, "\(out.text)")
        #expect(t.contains("U-Boot 2023"))
        #expect(t.contains("crc32 for 80200000 ... 8020ffff ==> 86c3db9d"))
    }

    @Test(.enabled(if: UBoot.available && QEMU.available)) func transcriptMatchesQEMU() throws {
        let out = OutputCollector()
        let console = SerialConsole { out.append($0) }
        let run = startMachine(try RunOptions(kernel: UBoot.kernel).makeMachine(), console: console)
        let ours = UBoot.session(send: { console.send($0) }, output: out)
        run.control.stop()
        _ = run.wait()

        let qemu = try QEMU.Session(arguments: ["-bios", UBoot.bios, "-kernel", UBoot.kernel])
        let theirs = UBoot.session(send: { qemu.send($0) }, output: qemu.output)
        _ = qemu.finish(timeout: 0)
        #expect(ours != nil && theirs != nil)
        #expect(ours == theirs)
    }
}
