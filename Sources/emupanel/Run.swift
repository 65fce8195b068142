import ArgumentParser
import EmulatorCore
import Foundation
import Headless
import RISCV

extension Emupanel {
    /// `emupanel run`: one guest, headless, QEMU-style — the UART is the terminal, the exit
    /// status is the finisher's code, 124 when `--max-instructions` ran out, 1 on any error.
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run a guest headless; the UART is this terminal (Ctrl-A x quits).",
            discussion: "Exit status: the test finisher's code (pass 0, fail N), 124 when --max-instructions runs out, 1 on an error.")

        @Option(help: "Machine type or alias (virt, virt-1.1, virt-1.0, sandbox, sandbox-hostrng).")
        var machine: String

        @Option(help: "Firmware at the start of RAM, or 'none' to start the kernel directly (default: Debian's OpenSBI fw_jump.bin).")
        var bios: String?

        @Option(help: "Kernel: ELF at its addresses, or raw binary at RAM + 2 MiB after firmware.")
        var kernel: String?

        @Option(help: "Initial ramdisk, placed after the kernel and named in the device tree's /chosen (QEMU's -initrd).")
        var initrd: String?

        @Option(help: "Kernel command line, the device tree's /chosen/bootargs (QEMU's -append).")
        var append: String?

        @Option(
            help: ArgumentHelp(
                "Disk image on virtio-blk (QEMU's -drive): FILE, or file=FILE[,format=qcow2|raw][,readonly=on]. Repeatable; needs virt-1.2 or newer.",
                valueName: "drive"))
        var drive: [String] = []

        @Option(help: "RAM in MiB (1...\(VirtMachine.maximumMemoryMiB), what the virt board maps).")
        var memory: Int = 128

        @Flag(help: "Deterministic clock: time follows retired instructions (QEMU's -icount).")
        var icount = false

        @Option(help: "Stop after this many retired instructions (exit 124).")
        var maxInstructions: UInt64?

        @Option(help: "Write the device tree blob to FILE and exit.")
        var dumpdtb: String?

        @Option(help: "Run N instructions, write the snapshot given by --save and exit 0.")
        var saveAt: UInt64?

        @Option(help: "Snapshot file to write at --save-at.")
        var save: String?

        @Option(help: "Continue from a snapshot file.")
        var load: String?

        @Flag(help: "Print retired instructions and MIPS to stderr at the end.")
        var stats = false

        func validate() throws {
            guard (saveAt == nil) == (save == nil) else {
                throw ValidationError("--save-at and --save go together")
            }
            // The board's own bound, the one the panel's limits (GET /host) come from too.
            guard (1...VirtMachine.maximumMemoryMiB).contains(memory) else {
                throw ValidationError("--memory must be 1...\(VirtMachine.maximumMemoryMiB) MiB")
            }
            guard initrd == nil || kernel != nil else { throw ValidationError("--initrd needs --kernel") }
        }

        func run() throws {
            do {
                Foundation.exit(try execute())
            } catch {
                FileHandle.standardError.write(Data("emupanel: \(error)\n".utf8))
                Foundation.exit(1)
            }
        }

        /// `FILE` or QEMU's `file=FILE,format=…,readonly=on|off` (format defaults to qcow2).
        static func parseDrive(_ text: String) throws -> DriveConfiguration {
            guard text.contains("=") else { return DriveConfiguration(path: text) }
            var drive = DriveConfiguration(path: "")
            for part in text.split(separator: ",") {
                let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
                guard pair.count == 2 else { throw ValidationError("--drive: '\(part)' is not key=value") }
                switch pair[0] {
                case "file": drive.path = pair[1]
                case "format":
                    guard let format = DriveConfiguration.Format(rawValue: pair[1]) else {
                        throw ValidationError("--drive: format must be qcow2 or raw, not '\(pair[1])'")
                    }
                    drive.format = format
                case "readonly":
                    guard ["on", "off"].contains(pair[1]) else { throw ValidationError("--drive: readonly must be on or off") }
                    drive.readOnly = pair[1] == "on"
                default: throw ValidationError("--drive: unknown key '\(pair[0])' (file, format, readonly)")
                }
            }
            guard !drive.path.isEmpty else { throw ValidationError("--drive needs file=FILE") }
            return drive
        }

        private func execute() throws -> Int32 {
            let type = try MachineCatalog.registry.resolve(machine)
            var options = RunOptions(
                machine: type.name, kernel: kernel, initrd: initrd, append: append, memoryMiB: memory, icount: icount,
                maxInstructions: maxInstructions)
            options.drives = try drive.map(Self.parseDrive)
            switch bios {
            case nil: options.bios = .default
            case "none": options.bios = .none
            case let path?: options.bios = .file(path)
            }
            if let dumpdtb {
                try HeadlessSession.dumpDeviceTree(options, of: type, to: dumpdtb)
                return 0
            }
            let terminal = Terminal()
            defer { terminal.restore() }
            let control = RunControl()
            let console = SerialConsole { bytes in Terminal.write(bytes) }
            terminal.forwardInput(to: console, control: control)
            let session = HeadlessSession(options: options, machineType: type, loadPath: load, saveAt: saveAt, savePath: save)
            let result = try session.run(console: console, control: control)
            if stats {
                let mips = result.seconds > 0 ? Double(result.instructions) / result.seconds / 1e6 : 0
                FileHandle.standardError.write(
                    Data("emupanel: \(result.instructions) instructions in \(result.seconds) s = \(Int(mips)) MIPS\n".utf8))
            }
            switch result.outcome {
            case .finished(let outcome): return outcome.exitStatus
            case .saved: return 0
            }
        }
    }
}

/// The controlling terminal in raw mode while a guest owns it, and stdin forwarded to the UART.
/// Ctrl-A x stops the guest and Ctrl-A Ctrl-A sends one Ctrl-A, as with QEMU's -nographic.
private final class Terminal: Sendable {
    private let saved: termios?

    init() {
        guard isatty(0) != 0 else { saved = nil; return }
        var original = termios()
        tcgetattr(0, &original)
        var raw = original
        cfmakeraw(&raw)
        raw.c_oflag |= tcflag_t(OPOST | ONLCR)
        tcsetattr(0, TCSANOW, &raw)
        saved = original
    }

    func restore() {
        if var saved { tcsetattr(0, TCSANOW, &saved) }
    }

    static func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Foundation.write(1, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { return }
                offset += n
            }
        }
    }

    func forwardInput(to console: SerialConsole, control: RunControl) {
        let interactive = saved != nil
        let reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 256)
            var escape = false
            while true {
                let n = read(0, &buffer, buffer.count)
                if n <= 0 { return }
                var out: [UInt8] = []
                for byte in buffer[0..<n] {
                    if escape {
                        escape = false
                        if byte == UInt8(ascii: "x") { control.stop(); return }
                        out.append(byte)
                    } else if byte == 0x01 && interactive {
                        escape = true
                    } else {
                        out.append(byte)
                    }
                }
                console.send(out)
            }
        }
        reader.name = "emupanel-stdin"
        reader.start()
    }
}
