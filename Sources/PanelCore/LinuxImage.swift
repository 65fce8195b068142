import Foundation
import Headless

/// The Linux guest as an image: Debian's OpenSBI, the kernel and initramfs guests/linux/build.sh
/// builds into the cache outside the source tree, and a disk with an ext4 file system per guest.
/// The panel only looks for the build (`build.sh --print-dir`); `make run` makes it.
enum LinuxImage {
    static let id = "linux"
    /// The console on the UART; the initramfs unpacked before the drivers probe, as in the tests.
    static let commandLine = "console=ttyS0 initramfs_async=0"
    static let disk = DiskTemplate(sizeBytes: 256 << 20, filesystem: "ext4")

    static func image(guestsDir: String, firmwareMissing: Bool) -> ImageCatalog.Image {
        let directory = buildDirectory(guestsDir: guestsDir)
        let kernel = directory.map { $0 + "/Image" }, initrd = directory.map { $0 + "/initramfs.cpio" }
        let built = [kernel, initrd].allSatisfy { $0.map { FileManager.default.isReadableFile(atPath: $0) } ?? false }
        let mke2fs = FileSystemMaker.mke2fs != nil
        let reason: String? = firmwareMissing ? "install Debian's opensbi package"
            : !built ? "the Linux guest is not built (make linux)"
            : !mke2fs ? "install Debian's e2fsprogs (mke2fs makes each guest's file system)" : nil
        var image = ImageCatalog.Image(
            id: id, name: "Linux 6.1 (busybox-style shell)",
            description: "Linux 6.1 built from Debian's linux-source under OpenSBI, with the project's init and shell; "
                + "a virtio disk with an ext4 file system (mount /dev/vda /mnt). Needs virt-1.2 or newer.",
            minimumMemoryMiB: 64, defaultMemoryMiB: 128, available: reason == nil, unavailableReason: reason,
            biosPath: DebianFirmware.openSBI, kernelPath: kernel ?? "")
        image.initrdPath = initrd
        image.commandLine = commandLine
        image.kernel = "Image"
        image.initrd = "initramfs.cpio"
        image.disk = disk
        return image
    }

    /// The cache directory this tree's build script names, built or not; nil without the script.
    static func buildDirectory(guestsDir: String) -> String? {
        let script = guestsDir + "/linux/build.sh"
        guard FileManager.default.isReadableFile(atPath: script) else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script, "--print-dir"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let path = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return path.isEmpty ? nil : path
    }
}
