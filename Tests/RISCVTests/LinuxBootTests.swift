// Linux (guests/linux/build.sh) boots under Debian's OpenSBI to the shell on the built-in
// core, answers a command, and prints what QEMU prints for the same kernel, initramfs and
// command line, up to printk timestamps.
import Foundation
import Headless
import Testing

@testable import RISCV

@Suite(.serialized) struct LinuxBootTests {
    static let commands = ["echo hello from emupanel", "uname", "cat /proc/cmdline"]

    func bootOurs(_ commands: [String], icount: Bool = false) throws -> String? {
        let out = OutputCollector()
        let console = SerialConsole { out.append($0) }
        let run = startMachine(try LinuxGuest.options(icount: icount).makeMachine(), console: console)
        let transcript = LinuxGuest.session(commands, send: { console.send($0) }, output: out)
        run.control.stop()
        _ = run.wait()
        return transcript
    }

    @Test(.enabled(if: LinuxGuest.available)) func bootsToTheShellAndAnswers() throws {
        let transcript = try #require(try bootOurs(Self.commands))
        #expect(transcript.contains("OpenSBI v"))
        #expect(transcript.contains("Linux version 6.1"))
        #expect(transcript.contains("Run /init as init process"))
        #expect(transcript.contains("# echo hello from emupanel\r\nhello from emupanel\r\n# "))
        #expect(transcript.contains("# uname\r\nLinux 6.1"))
        #expect(transcript.contains("# cat /proc/cmdline\r\n\(LinuxGuest.commandLine)\r\n"))
    }

    @Test(.enabled(if: LinuxGuest.available && QEMU.available)) func transcriptMatchesQEMU() throws {
        let ours = try #require(try bootOurs(Self.commands))
        let dtb = NSTemporaryDirectory() + "emupanel-linux-\(UUID().uuidString).dtb"
        defer { try? FileManager.default.removeItem(atPath: dtb) }
        let machine = try makeMachine(LinuxGuest.options())
        #expect(FileManager.default.createFile(atPath: dtb, contents: Data(machine.deviceTree)))
        let qemu = try QEMU.Session(arguments: LinuxGuest.qemuArguments(dtb: dtb))
        let theirs = LinuxGuest.session(Self.commands, send: { qemu.send($0) }, output: qemu.output)
        _ = qemu.finish(timeout: 0)
        let q = try #require(theirs, "QEMU did not reach the shell: \(qemu.output.text)")
        let a = LinuxGuest.normalizedForQEMU(ours)
        let b = LinuxGuest.normalizedForQEMU(q)
        if a != b {
            // "\r\n" is one Character: split the UTF-8 bytes at LF instead.
            func lines(_ text: String) -> [String] {
                text.utf8.split(separator: 10, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            }
            let left = lines(a)
            let right = lines(b)
            let firstDifference = (0..<min(left.count, right.count)).first { left[$0] != right[$0] } ?? min(left.count, right.count)
            Issue.record(
                """
                transcripts differ from line \(firstDifference + 1):
                ours: \(left.dropFirst(firstDifference).prefix(3).joined(separator: "\\n"))
                qemu: \(right.dropFirst(firstDifference).prefix(3).joined(separator: "\\n"))
                """)
        }
    }
}
