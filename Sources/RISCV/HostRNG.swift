import EmulatorCore

// A host entropy source ("host-rng"): guest reads of DATA return bytes read from the
// host's /dev/urandom through a file descriptor opened when the machine is built (QEMU's
// rng-random backend does the same with `filename=/dev/urandom`). The open descriptor is
// host state: it cannot travel in a stream, so the device is unmigratable and every
// machine type that carries it is tier `none` (SPEC §1).
#if canImport(Glibc)
    import Glibc
#endif

final class HostRNG {
    // Register offsets
    /// Read: fresh host entropy (1, 2, 4 or 8 bytes wide). Writes are ignored.
    static let data: UInt64 = 0x0
    /// Read: bit 0 = entropy available (the host file is open). Writes are ignored.
    static let status: UInt64 = 0x8
    static let statusReady: UInt64 = 0x1

    static let hostPath = "/dev/urandom"

    /// The host file; -1 when it could not be opened (STATUS then reads 0 and DATA 0).
    private let fd: Int32

    init(properties: DeviceProperties) throws {
        fd = open(properties.string("filename"), O_RDONLY | O_CLOEXEC)
        if fd < 0 { GuestErrorLog.log("host-rng: cannot open \(properties.string("filename")); STATUS reads 0") }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    func read(offset: UInt64, size: Int) -> UInt64 {
        switch offset {
        case HostRNG.data where [1, 2, 4, 8].contains(size):
            return entropy(bytes: size)
        case HostRNG.status where size == 4 || size == 8:
            return fd >= 0 ? HostRNG.statusReady : 0
        default:
            GuestErrorLog.log("host-rng: bad read at 0x\(String(offset, radix: 16)) size \(size)")
            return 0
        }
    }

    func write(offset: UInt64, size: Int, value: UInt64) {
        GuestErrorLog.log("host-rng: write to read-only register at 0x\(String(offset, radix: 16))")
    }

    /// Nothing guest-visible to reset: every read is fresh host entropy.
    func reset() {}

    private func entropy(bytes count: Int) -> UInt64 {
        guard fd >= 0 else { return 0 }
        var value: UInt64 = 0
        var filled = 0
        withUnsafeMutableBytes(of: &value) { buffer in
            while filled < count {
                let n = Glibc.read(fd, buffer.baseAddress! + filled, count - filled)
                if n <= 0 { break }
                filled += n
            }
        }
        if filled < count { GuestErrorLog.log("host-rng: short read from the host file") }
        return value
    }
}

// MARK: - Migration

extension HostRNG: VirtBusDevice {
    static let driver = "host-rng"
    static let migration = DeviceMigration<NoState>.unmigratable(
        reason: "reads the host's \(hostPath) through an open file descriptor, which cannot move to another host or into a snapshot")
    static let properties: [PropertyDefinition] = [
        .string("filename", default: hostPath, description: "host file the entropy is read from")
    ]
    static let region = VirtRegion.hostRNG

    func deviceTreeNode(_ fdt: inout FDTBuilder) {
        fdt.beginNode(VirtDeviceTree.nodeName("rng", Self.region))
        fdt.property("reg", region: mappedRegion)
        fdt.property("compatible", string: "emupanel,host-rng")
        fdt.endNode()
    }
}
