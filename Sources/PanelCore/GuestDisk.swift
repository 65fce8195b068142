import Foundation

/// A guest's disk as the API shows it (SPEC §8 "Disks"): `vda` is the first virtio-blk disk.
/// `overlay` names the qcow2 file the guest writes now, the top of its chain, inside the guest's
/// disk directory (a file name, never a host path).
public struct GuestDisk: Sendable, Codable, Equatable {
    public enum Format: String, Sendable, Codable { case qcow2 }
    public var id: String
    public var sizeBytes: Int64
    public var format: Format
    public var overlay: String

    public init(id: String, sizeBytes: Int64, format: Format = .qcow2, overlay: String) {
        self.id = id
        self.sizeBytes = sizeBytes
        self.format = format
        self.overlay = overlay
    }

    /// Linux's names for virtio disks in the order the board plugs them: vda, vdb, …
    static func id(forDrive index: Int) -> String { "vd" + String(UnicodeScalar(UInt8(ascii: "a") + UInt8(index))) }
}

/// What a snapshot froze of one disk: the overlay the guest wrote until the snapshot, never
/// written again (a file name in the guest's disk directory, never a host path).
public struct SnapshotDisk: Sendable, Codable, Equatable {
    public var id: String
    public var overlay: String

    public init(id: String, overlay: String) {
        self.id = id
        self.overlay = overlay
    }
}

/// The disk an image brings: each guest created from it gets its own (SPEC §5 `/images`).
public struct DiskTemplate: Sendable, Encodable, Equatable {
    public var sizeBytes: Int64
    public var format: GuestDisk.Format = .qcow2
    /// The file system made on it at creation (Debian's mke2fs), or nil for a blank disk.
    public var filesystem: String?

    public init(sizeBytes: Int64, format: GuestDisk.Format = .qcow2, filesystem: String?) {
        self.sizeBytes = sizeBytes
        self.format = format
        self.filesystem = filesystem
    }

    /// Sizes `POST /guests` accepts for `diskSizeBytes`: whole MiB within these bounds.
    public static let sizes: ClosedRange<Int64> = (16 << 20)...(64 << 30)
}

/// Where a guest's disk files live: libvirt's external-snapshot layout in one directory,
/// `<guest dir>/disks`. `<disk>.base.qcow2` holds the file system made at creation; every other
/// layer is `<disk>.<8 hex digits>.qcow2`, named once and never renamed: the guest's record names
/// its top (the overlay it writes), each snapshot the layer it froze, and every file names its
/// backing file relative to the directory, so the directory moves as a whole.
struct DiskLayout: Sendable {
    let directory: String

    func path(_ name: String) -> String { directory + "/" + name }
    func baseName(_ disk: String) -> String { disk + ".base.qcow2" }

    /// A layer's name no file has yet.
    func newLayerName(_ disk: String) -> String {
        while true {
            let name = disk + "." + Secrets.randomHex(bytes: 4) + ".qcow2"
            if !FileManager.default.fileExists(atPath: path(name)) { return name }
        }
    }

    /// Whether `name` is one of `disk`'s overlays (not its base, not a temporary file).
    func isOverlay(_ name: String, of disk: String) -> Bool {
        guard name.hasPrefix(disk + "."), name.hasSuffix(".qcow2") else { return false }
        let tag = name.dropFirst(disk.count + 1).dropLast(".qcow2".count)
        return tag.count == 8 && tag.allSatisfy(\.isHexDigit)
    }

    /// Every qcow2 file of the directory (no temporary files), by name.
    func files() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".qcow2") && !$0.hasPrefix(".") }.sorted()
    }
}
