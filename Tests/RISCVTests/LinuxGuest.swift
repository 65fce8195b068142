// The Linux guest built by guests/linux/build.sh (kernel + initramfs in the cache outside
// the source tree), how to boot it here and under QEMU, and how to talk to its shell.
import Foundation
import Headless

@testable import RISCV

enum LinuxGuest {
    /// The cache directory of this source tree's build, or nil when it is not built
    /// (`make test` builds it first; a bare `swift test` skips the Linux tests visibly).
    static let directory: String? = LinuxGuestBuild.builtDirectory(guestsDir: Guests.directory.path)

    static var available: Bool { directory != nil && FileManager.default.fileExists(atPath: DebianFirmware.openSBI) }
    static var kernel: String { directory! + "/Image" }
    static var initrd: String { directory! + "/initramfs.cpio" }
    /// initramfs_async=0: the initramfs is unpacked before the drivers probe, so its
    /// "Freeing initrd memory" line does not move with the host's speed.
    static let commandLine = "console=ttyS0 initramfs_async=0"
    /// The shell's prompt at the start of a line.
    static let prompt = "\r\n# "

    static func options(machine: String = "virt", icount: Bool = false) -> RunOptions {
        RunOptions(machine: machine, kernel: kernel, initrd: initrd, append: commandLine, icount: icount)
    }

    /// The arguments that make QEMU's virt board the same machine as ours: one hart with
    /// RV64IMAC and nothing more (no F/D/H, no bit manipulation, no Sstc, no PMP, no
    /// hardware performance counters, privileged spec 1.10), 128 MiB, and our device tree
    /// (`dtb`, written by the caller): QEMU's own lists devices this board does not have
    /// (PCI, flash, RTC, fw_cfg), and Linux's memory figures depend on the tree's size.
    static func qemuArguments(dtb: String) -> [String] {
        [
            "-cpu", "rv64,f=false,d=false,h=false,zba=false,zbb=false,zbc=false,zbs=false,sstc=false,pmp=false,pmu-num=0,priv_spec=v1.10.0",
            "-smp", "1", "-m", "128M", "-bios", DebianFirmware.openSBI, "-dtb", dtb,
            "-kernel", kernel, "-initrd", initrd, "-append", commandLine,
        ]
    }

    /// For comparing with QEMU: timestamps out, and the two figures of Linux's "Memory:"
    /// line that count the device tree's reservation. QEMU's -dtb loader grows the blob by
    /// 10000 bytes of free space (load_device_tree), which Linux reserves with it; every
    /// other figure of that line (kernel code, data, init, bss) must still match.
    static func normalizedForQEMU(_ text: String) -> String {
        let regex = try! NSRegularExpression(pattern: "Memory: [0-9]+K/([0-9]+K) available (.*), [0-9]+K reserved")
        let plain = normalized(text)
        return regex.stringByReplacingMatches(
            in: plain, range: NSRange(plain.startIndex..., in: plain),
            withTemplate: "Memory: ?K/$1 available $2, ?K reserved")
    }

    /// Console text with every printk timestamp ("[    1.234567] ") replaced by "[T] ".
    static func normalized(_ text: String) -> String {
        var out = ""
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "[") {
            out += rest[..<open]
            let tail = rest[open...]
            if let close = tail.firstIndex(of: "]"), tail.distance(from: open, to: close) <= 14,
                tail[tail.index(after: open)..<close].allSatisfy({ $0 == " " || $0 == "." || $0.isNumber }),
                tail[tail.index(after: open)..<close].contains(".")
            {
                out += "[T]"
                rest = tail[tail.index(after: close)...]
            } else {
                out += "["
                rest = tail[tail.index(after: open)...]
            }
        }
        return out + rest
    }

    /// Waits for the shell, types each command and waits for the prompt after it; returns
    /// the whole console transcript, or nil when the guest did not get there in time.
    static func session(
        _ commands: [String], send: (String) -> Void, output: OutputCollector,
        bootTimeout: Double = 300
    ) -> String? {
        guard output.wait(for: prompt, count: 1, timeout: bootTimeout) else { return nil }
        for (i, command) in commands.enumerated() {
            send(command + "\n")
            guard output.wait(for: prompt, count: i + 2, timeout: 120) else { return nil }
        }
        return output.text
    }
}
