import Foundation
import Headless

/// The bootable images this host offers (SPEC §5 `/images`). Guests name an image by id; the
/// API never takes or shows a host path, so a client cannot make the panel read arbitrary files.
public struct ImageCatalog: Sendable {
    public struct Image: Sendable, Encodable, Equatable {
        public var id: String
        public var name: String
        public var description: String
        /// Smallest RAM the image boots in.
        public var minimumMemoryMiB: Int
        public var defaultMemoryMiB: Int
        public var available: Bool
        /// Why an image is unavailable (a Debian package missing, a guest not built).
        public var unavailableReason: String?
        /// The guest architecture it is built for (`riscv64`, `x86_64`).
        public var arch = "riscv64"
        /// The backends that boot it.
        public var backends: [Backend] = [.builtin, .qemu]
        /// Firmware loaded at the start of RAM, or nil to start the kernel directly (`-bios none`).
        let biosPath: String?
        /// Loaded at 0x80200000 after firmware, or at its ELF addresses without firmware.
        let kernelPath: String
        /// An initramfs placed after the kernel (QEMU's -initrd), and the kernel's command line.
        var initrdPath: String? = nil
        public var commandLine: String? = nil
        /// What the guest boots, by file name (never a host path): e.g. `Image` and `initramfs.cpio`.
        public var kernel: String? = nil
        public var initrd: String? = nil
        /// The disk each guest created from the image gets (`POST /guests` may change its size).
        public var disk: DiskTemplate? = nil

        enum CodingKeys: String, CodingKey {
            case id, name, description, minimumMemoryMiB, defaultMemoryMiB, available, unavailableReason, arch, backends
            case kernel, initrd, commandLine, disk
        }
    }

    public let images: [Image]

    /// Debian's firmware, the Linux guest when guests/linux/build.sh has built it, and the
    /// project's test guests found in `guestsDir`.
    public init(guestsDir: String) {
        var images: [Image] = []
        let firmware = [DebianFirmware.openSBI, DebianFirmware.uBoot]
        let missing = firmware.filter { !FileManager.default.isReadableFile(atPath: $0) }
        images.append(LinuxImage.image(guestsDir: guestsDir, firmwareMissing: !missing.isEmpty))
        images.append(
            Image(
                id: "uboot", name: "OpenSBI + U-Boot",
                description: "Debian's OpenSBI (fw_jump) and S-mode U-Boot: boots to an interactive => prompt.",
                minimumMemoryMiB: 64, defaultMemoryMiB: 128, available: missing.isEmpty,
                unavailableReason: missing.isEmpty ? nil : "install Debian's opensbi and u-boot-qemu packages",
                biosPath: DebianFirmware.openSBI, kernelPath: DebianFirmware.uBoot))
        for guest in Self.testGuests {
            let path = guestsDir + "/" + guest.file
            let present = FileManager.default.isReadableFile(atPath: path)
            images.append(
                Image(
                    id: guest.id, name: guest.name, description: guest.description,
                    minimumMemoryMiB: guest.minimumMemoryMiB, defaultMemoryMiB: guest.defaultMemoryMiB, available: present,
                    unavailableReason: present ? nil : "\(guest.file) is not built (make -C guests)",
                    biosPath: nil, kernelPath: path))
        }
        images.append(Self.seaBIOS)
        self.images = images
    }

    /// QEMU's own PC firmware with no disk: SeaBIOS, then iPXE's prompt on the serial console.
    /// No paths: QEMU loads its default firmware itself.
    private static let seaBIOS: Image = {
        let firmware = "/usr/share/seabios/bios-256k.bin"
        let present = FileManager.default.isReadableFile(atPath: firmware)
        return Image(
            id: "seabios", name: "SeaBIOS (no disk)",
            description: "QEMU's default PC firmware with no disk: SeaBIOS's banner, then iPXE (Ctrl-B for its prompt).",
            minimumMemoryMiB: 16, defaultMemoryMiB: 128, available: present,
            unavailableReason: present ? nil : "install Debian's qemu-system-x86 (it brings seabios)",
            arch: "x86_64", backends: [.qemu], biosPath: nil, kernelPath: "")
    }()

    private struct TestGuest {
        var id: String, file: String, name: String, description: String
        var minimumMemoryMiB = 16, defaultMemoryMiB = 64
    }

    private static let testGuests: [TestGuest] = [
        TestGuest(
            id: "memory-pattern", file: "mempattern-forever.elf", name: "Memory pattern",
            description: "Increments one byte of every 4 KiB page forever and checks the pattern: the live-migration workload.",
            minimumMemoryMiB: 64, defaultMemoryMiB: 256),
        TestGuest(
            id: "memory-pattern-512", file: "mempattern-512-forever.elf", name: "Memory pattern, 512 MiB",
            description: "The memory pattern over 512 MiB, rewritten forever: a guest that dirties memory faster than any link.",
            minimumMemoryMiB: 768, defaultMemoryMiB: 1024),
        TestGuest(
            id: "memory-pattern-512-idle", file: "mempattern-512-idle.elf", name: "Memory pattern, 512 MiB, idle",
            description: "Writes the pattern over 512 MiB once, then only checks it once a second: a guest with its memory in use, idle.",
            minimumMemoryMiB: 768, defaultMemoryMiB: 1024),
        TestGuest(
            id: "benchmark", file: "bench.elf", name: "CPU benchmark",
            description: "CRC32 and a prime sieve; prints checksums and powers off."),
        TestGuest(
            id: "benchmark-quick", file: "bench-quick.elf", name: "CPU benchmark (short)",
            description: "The benchmark's short run (about 20 M instructions): checksums in a blink."),
        TestGuest(
            id: "timer", file: "timer.elf", name: "Timer",
            description: "Machine-timer interrupts at 100 Hz; counts lost ticks."),
        TestGuest(
            id: "uart-echo", file: "echo.elf", name: "UART echo",
            description: "Echoes what you type, through the UART FIFO and RX interrupts."),
        TestGuest(
            id: "sv39", file: "sv39.elf", name: "Sv39 paging",
            description: "Turns on paging, drops to U-mode and handles page faults."),
    ]

    public func image(_ id: String) throws -> Image {
        guard let image = images.first(where: { $0.id == id }) else {
            throw PanelError(
                .invalid, code: "unknown_image",
                message: "no image '\(id)'; GET /api/v1/images lists them")
        }
        guard image.available else {
            throw PanelError(
                .invalid, code: "image_unavailable",
                message: "image '\(id)' is not available here: \(image.unavailableReason ?? "unknown reason")")
        }
        return image
    }
}
