// One qemu-system-* binary as discovery found it: its version and machine types, each
// with its computed tier. Probing takes a QEMU start per machine type, so the result is
// kept on disk, keyed by the binary's path, size and modification time: an upgraded
// QEMU (a new file) is probed again, an unchanged one is read back.
import Foundation

public struct QEMUBinary: Sendable, Codable, Equatable {
    /// Absolute path of the binary.
    public var path: String
    /// Where discovery found it: path, size and modification time (the cache key).
    public var identity: QEMUBinaryIdentity
    public var version: QEMUVersion
    public var machineTypes: [QEMUMachineType]
    /// Whether the binary has `-sandbox` (seccomp); guests of it are started sandboxed if so.
    public var sandbox: Bool

    public init(path: String, identity: QEMUBinaryIdentity, version: QEMUVersion, machineTypes: [QEMUMachineType], sandbox: Bool) {
        self.path = path
        self.identity = identity
        self.version = version
        self.machineTypes = machineTypes
        self.sandbox = sandbox
    }

    /// `qemu-system-riscv64`.
    public var name: String { (path as NSString).lastPathComponent }

    /// The target architecture from the name: `riscv64`, `x86_64` (Debian's
    /// `qemu-system-x86_64-microvm` is an x86_64 build with the microvm board only).
    public var arch: String {
        let suffix = name.hasPrefix("qemu-system-") ? String(name.dropFirst("qemu-system-".count)) : name
        return suffix.split(separator: "-").first.map(String.init) ?? suffix
    }

    /// The type named `name`, or the type `name` is an alias of.
    public func machineType(_ name: String) -> QEMUMachineType? {
        machineTypes.first { $0.name == name } ?? machineTypes.first { $0.alias == name }
    }
}

/// Which file a probe describes; a different size or mtime means a different QEMU.
public struct QEMUBinaryIdentity: Sendable, Codable, Equatable {
    public var path: String
    public var size: Int64
    public var modificationTimeNanoseconds: Int64

    public init(path: String, size: Int64, modificationTimeNanoseconds: Int64) {
        self.path = path
        self.size = size
        self.modificationTimeNanoseconds = modificationTimeNanoseconds
    }

    public init(path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else { throw QEMUError.io(operation: "stat \(path)", errno: errno) }
        self.path = path
        size = Int64(info.st_size)
        modificationTimeNanoseconds = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
    }
}
