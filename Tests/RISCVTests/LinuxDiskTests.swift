// Linux on the built-in core with a virtio-blk disk (virt-1.2): an ext4 file system made
// on the host, reached through a qcow2 overlay; what the guest writes survives a reboot of
// the guest, lands only in the overlay, and leaves an image qemu-img accepts.
import Block
import Foundation
import Headless
import Testing

@testable import RISCV

enum HostTools {
    static func run(_ tool: String, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
    static let mke2fs = "/usr/sbin/mke2fs"
    static let qemuImg = "/usr/bin/qemu-img"
    static var haveMke2fs: Bool { FileManager.default.isExecutableFile(atPath: mke2fs) }
    static var haveQEMUImg: Bool { FileManager.default.isExecutableFile(atPath: qemuImg) }
}

/// A scratch directory for one test, removed afterwards.
final class DiskScratch {
    let path = NSTemporaryDirectory() + "emupanel-disk-\(UUID().uuidString)"
    init() { try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }

    /// A 32 MiB ext4 file system in a raw file, under a fresh qcow2 overlay; returns the overlay.
    func formattedDisk() throws -> String {
        let base = file("base.raw")
        FileManager.default.createFile(atPath: base, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: base))
        try handle.truncate(atOffset: 32 << 20)
        try handle.close()
        #expect(try HostTools.run(HostTools.mke2fs, ["-q", "-F", "-t", "ext4", "-L", "emupanel", base]) == 0)
        let overlay = file("disk.qcow2")
        try QCOW2Image.create(path: overlay, backingFile: "base.raw", backingFormat: "raw")
        return overlay
    }
}

@Suite(.serialized) struct LinuxDiskTests {
    @Test(.enabled(if: LinuxGuest.available && HostTools.haveMke2fs))
    func aFileWrittenOnTheDiskSurvivesAReboot() throws {
        let scratch = DiskScratch()
        let disk = try scratch.formattedDisk()
        let baseBefore = try Data(contentsOf: URL(fileURLWithPath: scratch.file("base.raw")))

        var options = LinuxGuest.options(machine: "virt-1.2")
        options.drives = [DriveConfiguration(path: disk)]
        let out = OutputCollector()
        let console = SerialConsole { out.append($0) }
        let run = startMachine(try options.makeMachine(), console: console)
        defer { run.control.stop(); _ = run.wait() }

        let first = LinuxGuest.session(
            [
                "mount /dev/vda /mnt", "echo written before the reboot > /mnt/note",
                "cat /mnt/note", "umount /mnt", "reboot",
            ],
            send: { console.send($0) }, output: out)
        // `reboot` prints no prompt; the next boot's first prompt is the sixth one.
        #expect(first == nil || out.text.contains("reboot"))
        #expect(out.wait(for: LinuxGuest.prompt, count: 6, timeout: 300), "the guest did not come back: \(out.text.suffix(2000))")
        #expect(out.text.contains("virtio_blk virtio0: [vda] 65536 512-byte logical blocks"))
        let before = out.text.count
        for (i, command) in ["mount /dev/vda /mnt", "cat /mnt/note", "ls /mnt"].enumerated() {
            console.send(command + "\n")
            #expect(out.wait(for: LinuxGuest.prompt, count: 7 + i, timeout: 120))
        }
        let after = String(out.text.dropFirst(before))
        #expect(after.contains("cat /mnt/note\r\nwritten before the reboot\r\n"), "\(after)")
        #expect(after.contains("note\r\n"))
        run.control.stop()
        _ = run.wait()

        // The base file system is untouched: every write went to the overlay.
        #expect(try Data(contentsOf: URL(fileURLWithPath: scratch.file("base.raw"))) == baseBefore)
        if HostTools.haveQEMUImg {
            #expect(try HostTools.run(HostTools.qemuImg, ["check", disk]) == 0, "qemu-img check refused the overlay")
        }
    }
}
