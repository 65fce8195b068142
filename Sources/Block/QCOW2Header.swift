// The qcow2 header (QEMU docs/interop/qcow2.txt, "Header"): big-endian fields at fixed
// offsets, version 3 additions from byte 72, then header extensions and the backing file
// name inside the first cluster.

public struct QCOW2Header: Equatable, Sendable {
    static let magic: UInt32 = 0x5146_49fb  // "QFI\xfb"
    static let version3Length: UInt32 = 104
    /// Header extension types (qcow2.txt, "Header extensions").
    static let extensionEnd: UInt32 = 0
    static let extensionBackingFormat: UInt32 = 0xe279_2aca
    static let extensionFeatureNames: UInt32 = 0x6803_f857

    // Incompatible feature bits: an image with a bit we do not know cannot be opened.
    static let incompatibleDirty: UInt64 = 1 << 0
    static let incompatibleCorrupt: UInt64 = 1 << 1
    static let incompatibleExternalData: UInt64 = 1 << 2
    static let incompatibleCompressionType: UInt64 = 1 << 3
    static let incompatibleExtendedL2: UInt64 = 1 << 4

    public var version: UInt32 = 3
    public var backingFileOffset: UInt64 = 0
    public var backingFileSize: UInt32 = 0
    public var clusterBits: UInt32 = 16
    /// The virtual disk size in bytes.
    public var size: UInt64 = 0
    public var cryptMethod: UInt32 = 0
    public var l1Size: UInt32 = 0
    public var l1TableOffset: UInt64 = 0
    public var refcountTableOffset: UInt64 = 0
    public var refcountTableClusters: UInt32 = 0
    public var snapshotCount: UInt32 = 0
    public var snapshotsOffset: UInt64 = 0
    public var incompatibleFeatures: UInt64 = 0
    public var compatibleFeatures: UInt64 = 0
    public var autoclearFeatures: UInt64 = 0
    /// Refcount width is 2^order bits; QEMU's default and the only one written here is 4 (16 bits).
    public var refcountOrder: UInt32 = 4
    public var headerLength: UInt32 = version3Length

    /// From header extensions and the name area; not fields of the fixed header.
    public var backingFile: String?
    public var backingFormat: String?

    public var clusterSize: Int { 1 << Int(clusterBits) }

    public init() {}

    /// Parses the first cluster (or more) of an image. `path` names the file in errors.
    init(parsing b: [UInt8], path: String) throws {
        func u32(_ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 << 8 | UInt32(b[o + $1]) } }
        func u64(_ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 << 8 | UInt64(b[o + $1]) } }
        guard b.count >= 72, u32(0) == QCOW2Header.magic else { throw BlockError.notQCOW2(path: path) }
        version = u32(4)
        guard version == 2 || version == 3 else { throw BlockError.unsupported(path: path, feature: "qcow2 version \(version)") }
        backingFileOffset = u64(8)
        backingFileSize = u32(16)
        clusterBits = u32(20)
        size = u64(24)
        cryptMethod = u32(32)
        l1Size = u32(36)
        l1TableOffset = u64(40)
        refcountTableOffset = u64(48)
        refcountTableClusters = u32(56)
        snapshotCount = u32(60)
        snapshotsOffset = u64(64)
        if version == 3 {
            guard b.count >= 104 else { throw BlockError.corrupt(path: path, reason: "version 3 header is truncated") }
            incompatibleFeatures = u64(72)
            compatibleFeatures = u64(80)
            autoclearFeatures = u64(88)
            refcountOrder = u32(96)
            headerLength = u32(100)
        } else {
            refcountOrder = 4
            headerLength = 72
        }
        guard (9...21).contains(clusterBits) else {
            throw BlockError.corrupt(path: path, reason: "cluster_bits \(clusterBits) is outside 9...21")
        }
        guard cryptMethod == 0 else { throw BlockError.unsupported(path: path, feature: "encryption") }
        guard refcountOrder == 4 else { throw BlockError.unsupported(path: path, feature: "refcount_order \(refcountOrder) (only 16-bit refcounts)") }
        let known = QCOW2Header.incompatibleDirty | QCOW2Header.incompatibleCorrupt
        if incompatibleFeatures & ~known != 0 {
            throw BlockError.unsupported(
                path: path,
                feature:
                    "incompatible features 0x\(String(incompatibleFeatures & ~known, radix: 16)) (external data file, compression type or extended L2)"
            )
        }
        if incompatibleFeatures & QCOW2Header.incompatibleCorrupt != 0 {
            throw BlockError.corrupt(path: path, reason: "the image is marked corrupt; repair it with qemu-img check -r all")
        }
        if incompatibleFeatures & QCOW2Header.incompatibleDirty != 0 {
            throw BlockError.unsupported(path: path, feature: "lazy refcounts left dirty; repair it with qemu-img check -r all")
        }
        let cluster = UInt64(clusterSize)
        guard headerLength >= 72, Int(headerLength) <= b.count, UInt64(headerLength) <= cluster else {
            throw BlockError.corrupt(path: path, reason: "header_length \(headerLength)")
        }
        guard l1TableOffset % cluster == 0, refcountTableOffset % cluster == 0, refcountTableOffset != 0 else {
            throw BlockError.corrupt(path: path, reason: "a table offset is not cluster aligned")
        }
        guard size % 512 == 0, size <= 1 << 50 else { throw BlockError.corrupt(path: path, reason: "virtual size \(size)") }
        let l2Entries = UInt64(clusterSize / 8)
        let needed = (size + cluster * l2Entries - 1) / (cluster * l2Entries)
        guard UInt64(l1Size) >= needed, l1Size <= 1 << 25 else {
            throw BlockError.corrupt(path: path, reason: "L1 table of \(l1Size) entries for \(size) bytes")
        }

        // Header extensions (version 3: after header_length; version 2: after 72 bytes).
        var at = Int(headerLength)
        while at + 8 <= b.count {
            let type = u32(at)
            let length = Int(u32(at + 4))
            at += 8
            if type == QCOW2Header.extensionEnd { break }
            guard at + length <= b.count else { throw BlockError.corrupt(path: path, reason: "a header extension runs past the first cluster") }
            if type == QCOW2Header.extensionBackingFormat {
                backingFormat = String(decoding: b[at..<at + length], as: UTF8.self)
            }
            at += (length + 7) & ~7
        }
        if backingFileOffset != 0 {
            let start = Int(backingFileOffset)
            let end = start + Int(backingFileSize)
            guard backingFileSize > 0, backingFileSize <= 1023, end <= b.count else {
                throw BlockError.corrupt(path: path, reason: "backing file name at \(backingFileOffset), \(backingFileSize) bytes")
            }
            backingFile = String(decoding: b[start..<end], as: UTF8.self)
        }
    }

    /// The first cluster's bytes: header, extensions (backing format), backing file name.
    func serialized() -> [UInt8] {
        var b = [UInt8]()
        func u32(_ v: UInt32) { for s in stride(from: 24, through: 0, by: -8) { b.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) } }
        func u64(_ v: UInt64) { for s in stride(from: 56, through: 0, by: -8) { b.append(UInt8(truncatingIfNeeded: v >> UInt64(s))) } }
        u32(QCOW2Header.magic); u32(version); u64(backingFileOffset); u32(backingFileSize); u32(clusterBits)
        u64(size); u32(cryptMethod); u32(l1Size); u64(l1TableOffset); u64(refcountTableOffset)
        u32(refcountTableClusters); u32(snapshotCount); u64(snapshotsOffset)
        u64(incompatibleFeatures); u64(compatibleFeatures); u64(autoclearFeatures); u32(refcountOrder); u32(headerLength)
        if let backingFormat {
            let name = Array(backingFormat.utf8)
            u32(QCOW2Header.extensionBackingFormat); u32(UInt32(name.count))
            b += name
            while b.count % 8 != 0 { b.append(0) }
        }
        u32(QCOW2Header.extensionEnd); u32(0)
        if let backingFile { b += Array(backingFile.utf8) }
        return b
    }

    /// Where the backing file name goes when the header is built: after the extensions.
    var nameOffset: Int {
        var length = Int(headerLength) + 8
        if let backingFormat { length += 8 + ((backingFormat.utf8.count + 7) & ~7) }
        return length
    }
}
