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
        let directory = LinuxGuestBuild.builtDirectory(guestsDir: guestsDir)
        let mke2fs = FileSystemMaker.mke2fs != nil
        let reason: String? =
            firmwareMissing
            ? "install Debian's opensbi package"
            : directory == nil
                ? "the Linux guest is not built (make linux)"
                : !mke2fs ? "install Debian's e2fsprogs (mke2fs makes each guest's file system)" : nil
        var image = ImageCatalog.Image(
            id: id, name: "Linux 6.1 (busybox-style shell)",
            description: "Linux 6.1 built from Debian's linux-source under OpenSBI, with the project's init and shell; "
                + "a virtio disk with an ext4 file system (mount /dev/vda /mnt). Needs virt-1.2 or newer.",
            minimumMemoryMiB: 64, defaultMemoryMiB: 128, available: reason == nil, unavailableReason: reason,
            biosPath: DebianFirmware.openSBI, kernelPath: directory.map { $0 + "/" + LinuxGuestBuild.kernelName } ?? "")
        // Its disk chain is the built-in core's (QEMU guests of the panel take no disks yet).
        image.backends = [.builtin]
        image.initrdPath = directory.map { $0 + "/" + LinuxGuestBuild.initrdName }
        image.commandLine = commandLine
        image.kernel = LinuxGuestBuild.kernelName
        image.initrd = LinuxGuestBuild.initrdName
        image.disk = disk
        return image
    }
}
