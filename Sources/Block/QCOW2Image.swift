// A qcow2 image (QEMU docs/interop/qcow2.txt) as a BlockDevice: two-level cluster mapping
// (L1 -> L2 -> data), 16-bit refcounts, and a backing file read where the image holds no
// data — the chain libvirt's external snapshots build. New clusters are appended to the end
// of the file; their refcount is written before anything points at them, so a crash can
// leak a cluster (qemu-img check reports a leak) but never corrupt the image. Every
// cluster this writer uses has refcount 1 and carries the COPIED flag, as QEMU's own do.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

public final class QCOW2Image: BlockDevice {
    /// A chain longer than this is refused (QEMU allows more, but a loop must end somewhere).
    public static let maximumChainLength = 64
    public static let defaultClusterBits: UInt32 = 16

    // L1/L2 entry bits (qcow2.txt, "Cluster mapping").
    static let copied: UInt64 = 1 << 63
    static let compressed: UInt64 = 1 << 62
    static let zeroFlag: UInt64 = 1
    static let offsetMask: UInt64 = 0x00ff_ffff_ffff_fe00

    public let path: String
    public internal(set) var header: QCOW2Header
    /// The image under this one: reads of clusters this image does not hold go there.
    public internal(set) var backing: (any BlockDevice)?
    public let isReadOnly: Bool
    public var sizeBytes: UInt64 { header.size }

    let file: HostFile
    let clusterSize: Int
    let clusterBits: UInt64
    let l2Entries: Int
    var l1: [UInt64]
    private var l2Tables: [UInt64: [UInt64]] = [:]
    private var refcountTable: [UInt64]
    private var refcountBlocks: [UInt64: [UInt16]] = [:]
    /// The next cluster appended goes here (the file's size, rounded up to a cluster).
    private var fileEnd: UInt64

    /// Opens `path` and, recursively and read-only, its backing chain. A relative backing
    /// name is resolved against the image's directory, as QEMU does.
    public init(path: String, writable: Bool = true, depth: Int = 0) throws {
        guard depth < QCOW2Image.maximumChainLength else { throw BlockError.backingChainTooLong(path: path) }
        self.path = path
        isReadOnly = !writable
        file = try HostFile(path: path, writable: writable)
        let first = try file.read(at: 0, count: 1 << 16)
        var parsed = try QCOW2Header(parsing: first, path: path)
        if parsed.clusterSize > first.count {
            parsed = try QCOW2Header(parsing: try file.read(at: 0, count: parsed.clusterSize), path: path)
        }
        header = parsed
        if writable && header.snapshotCount > 0 {
            throw BlockError.unsupported(path: path, feature: "internal snapshots (open it read-only, or use external overlays)")
        }
        clusterSize = header.clusterSize
        clusterBits = UInt64(header.clusterBits)
        l2Entries = clusterSize / 8
        let fileSize = try file.size
        fileEnd = (fileSize + UInt64(clusterSize) - 1) & ~(UInt64(clusterSize) - 1)

        let l1Bytes = try file.read(at: header.l1TableOffset, count: Int(header.l1Size) * 8)
        l1 = QCOW2Image.bigEndianWords(l1Bytes)
        let tableBytes = try file.read(at: header.refcountTableOffset, count: Int(header.refcountTableClusters) * clusterSize)
        refcountTable = QCOW2Image.bigEndianWords(tableBytes)

        if let name = header.backingFile {
            let resolved = QCOW2Image.resolve(backing: name, of: path)
            if header.backingFormat == "raw" {
                backing = try RawImage(path: resolved, writable: false)
            } else {
                backing = try QCOW2Image(path: resolved, writable: false, depth: depth + 1)
            }
        } else {
            backing = nil
        }
    }

    // MARK: Creating

    /// Creates an empty image (no cluster allocated) of `sizeBytes`, or of the backing
    /// image's size when nil, optionally over `backingFile` (recorded as given: a relative
    /// name is resolved against `path`'s directory when opened). The file is written under a
    /// temporary name and renamed into place, so `path` either does not exist or is whole.
    public static func create(
        path: String, sizeBytes: UInt64? = nil, backingFile: String? = nil,
        backingFormat: String = "qcow2", clusterBits: UInt32 = defaultClusterBits
    ) throws {
        if access(path, F_OK) == 0 { throw BlockError.exists(path: path) }
        var size = sizeBytes ?? 0
        if sizeBytes == nil, let backingFile {
            let resolved = resolve(backing: backingFile, of: path)
            let base: any BlockDevice =
                backingFormat == "raw"
                ? try RawImage(path: resolved, writable: false)
                : try QCOW2Image(path: resolved, writable: false)
            size = base.sizeBytes
        }
        guard size >= 512, size % 512 == 0, size <= 1 << 50 else { throw BlockError.invalidSize(size) }
        guard (9...21).contains(clusterBits) else { throw BlockError.invalidSize(size) }

        let cluster = UInt64(1) << UInt64(clusterBits)
        let l2Coverage = cluster * (cluster / 8)
        var header = QCOW2Header()
        header.clusterBits = clusterBits
        header.size = size
        header.l1Size = UInt32((size + l2Coverage - 1) / l2Coverage)
        let l1Clusters = max(1, (UInt64(header.l1Size) * 8 + cluster - 1) / cluster)
        // Cluster 0 header, 1 refcount table, 2 refcount block, 3... L1 (qemu-img's layout).
        header.refcountTableOffset = cluster
        header.refcountTableClusters = 1
        header.l1TableOffset = 3 * cluster
        if let backingFile {
            header.backingFile = backingFile
            header.backingFormat = backingFormat
            header.backingFileOffset = UInt64(header.nameOffset)
            header.backingFileSize = UInt32(backingFile.utf8.count)
            guard header.backingFileSize <= 1023, header.nameOffset + backingFile.utf8.count <= Int(cluster) else {
                throw BlockError.unsupported(path: path, feature: "a backing file name of \(backingFile.utf8.count) bytes")
            }
        }
        let used = 3 + l1Clusters
        guard used <= cluster * 8 / 16 else { throw BlockError.invalidSize(size) }

        var image = [UInt8](repeating: 0, count: Int(used * cluster))
        let headerBytes = header.serialized()
        image.replaceSubrange(0..<headerBytes.count, with: headerBytes)
        // Refcount table entry 0 -> the refcount block at cluster 2.
        put64(&image, at: Int(cluster), 2 * cluster)
        // Each used cluster is referenced once.
        for c in 0..<Int(used) { put16(&image, at: Int(2 * cluster) + 2 * c, 1) }

        try placeWhole(path) { temporary in
            let file = try HostFile(creating: temporary)
            try file.write(at: 0, image)
            try file.sync()
        }
    }

    /// Writes a new file through `write` under a temporary name beside `path`, then links it into
    /// place: `path` either does not exist or is whole, and a file that appeared meanwhile is never
    /// replaced (link() refuses an existing name).
    static func placeWhole(_ path: String, write: (_ temporary: String) throws -> Void) throws {
        let directory = directoryOf(path)
        let temporary = directory + "/." + baseName(path) + ".partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try write(temporary)
        } catch {
            unlink(temporary)
            throw error
        }
        guard link(temporary, path) == 0 else {
            let e = errno
            unlink(temporary)
            throw e == EEXIST ? BlockError.exists(path: path) : BlockError.io(path: path, operation: "rename into place", errno: e)
        }
        unlink(temporary)
        syncDirectory(directory)
    }

    // MARK: BlockDevice

    public func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        try checkRange(offset, buffer.count)
        var done = 0
        while done < buffer.count {
            let guest = offset + UInt64(done)
            let inCluster = Int(guest & UInt64(clusterSize - 1))
            let count = min(buffer.count - done, clusterSize - inCluster)
            let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + count])
            let entry = try l2Entry(guest)
            if entry & QCOW2Image.compressed != 0 {
                throw BlockError.unsupported(path: path, feature: "compressed clusters")
            } else if entry & QCOW2Image.zeroFlag != 0 {
                chunk.initializeMemory(as: UInt8.self, repeating: 0)
            } else if entry & QCOW2Image.offsetMask != 0 {
                try file.read(at: (entry & QCOW2Image.offsetMask) + UInt64(inCluster), into: chunk)
            } else {
                try readBelow(at: guest, into: chunk)
            }
            done += count
        }
    }

    public func write(at offset: UInt64, from buffer: UnsafeRawBufferPointer) throws {
        guard !isReadOnly else { throw BlockError.readOnly(path: path) }
        try checkRange(offset, buffer.count)
        var done = 0
        while done < buffer.count {
            let guest = offset + UInt64(done)
            let inCluster = Int(guest & UInt64(clusterSize - 1))
            let count = min(buffer.count - done, clusterSize - inCluster)
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[done..<done + count])
            try writeChunk(guest, inCluster: inCluster, chunk)
            done += count
        }
    }

    public func flush() throws {
        if !isReadOnly { try file.sync() }
    }

    // MARK: Chains

    /// The files of this image's chain, this one first, its base last.
    public var chain: [String] {
        var paths = [path]
        var below = backing
        while let image = below {
            if let q = image as? QCOW2Image {
                paths.append(q.path); below = q.backing
            } else if let r = image as? RawImage {
                paths.append(r.path); below = nil
            } else {
                below = nil
            }
        }
        return paths
    }

    /// Whether the guest-visible bytes of the cluster at `offset` are held by this image
    /// (allocated or explicitly zero) rather than read through to the backing chain.
    public func isAllocated(at offset: UInt64) throws -> Bool {
        try l2Entry(offset) & (QCOW2Image.offsetMask | QCOW2Image.zeroFlag) != 0
    }

    // MARK: Cluster mapping

    private func checkRange(_ offset: UInt64, _ count: Int) throws {
        guard offset <= header.size, header.size - offset >= UInt64(count) else {
            throw BlockError.outOfRange(path: path, offset: offset, count: count, size: header.size)
        }
    }

    private func l1Index(_ guest: UInt64) -> Int { Int(guest >> (clusterBits + clusterBits - 3)) }
    private func l2Index(_ guest: UInt64) -> Int { Int((guest >> clusterBits) & UInt64(l2Entries - 1)) }

    /// The L2 entry for `guest`, or 0 when no L2 table covers it.
    func l2Entry(_ guest: UInt64) throws -> UInt64 {
        let l1Entry = l1[l1Index(guest)]
        let table = l1Entry & QCOW2Image.offsetMask
        if table == 0 { return 0 }
        return try l2Table(at: table)[l2Index(guest)]
    }

    func l2Table(at offset: UInt64) throws -> [UInt64] {
        if let cached = l2Tables[offset] { return cached }
        guard offset % UInt64(clusterSize) == 0, offset + UInt64(clusterSize) <= fileEnd else {
            throw BlockError.corrupt(path: path, reason: "L2 table at \(offset) lies outside the file")
        }
        let table = QCOW2Image.bigEndianWords(try file.read(at: offset, count: clusterSize))
        l2Tables[offset] = table
        return table
    }

    /// Reads what lies under this image: the backing chain, zeros past its end or without one.
    private func readBelow(at guest: UInt64, into chunk: UnsafeMutableRawBufferPointer) throws {
        guard let backing, guest < backing.sizeBytes else {
            chunk.initializeMemory(as: UInt8.self, repeating: 0)
            return
        }
        let available = Int(min(UInt64(chunk.count), backing.sizeBytes - guest))
        try backing.read(at: guest, into: UnsafeMutableRawBufferPointer(rebasing: chunk[0..<available]))
        if available < chunk.count {
            UnsafeMutableRawBufferPointer(rebasing: chunk[available...]).initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    private func writeChunk(_ guest: UInt64, inCluster: Int, _ chunk: UnsafeRawBufferPointer) throws {
        let table = try l2TableForWriting(guest)
        let index = l2Index(guest)
        let entry = try l2Table(at: table)[index]
        if entry & QCOW2Image.compressed != 0 {
            throw BlockError.unsupported(path: path, feature: "compressed clusters")
        }
        let host = entry & QCOW2Image.offsetMask
        if host != 0 && entry & QCOW2Image.zeroFlag == 0 {
            guard entry & QCOW2Image.copied != 0 else {
                throw BlockError.unsupported(path: path, feature: "shared clusters (refcount above 1)")
            }
            try file.write(at: host + UInt64(inCluster), from: chunk)
            return
        }
        // A new cluster (or a preallocated zero one): its other bytes come from below, or are zero.
        var data = [UInt8](repeating: 0, count: clusterSize)
        let clusterStart = guest & ~UInt64(clusterSize - 1)
        if chunk.count < clusterSize && entry & QCOW2Image.zeroFlag == 0 {
            try data.withUnsafeMutableBytes { try readBelow(at: clusterStart, into: $0) }
        }
        data.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[inCluster..<inCluster + chunk.count]).copyMemory(from: chunk) }
        let target = host != 0 && entry & QCOW2Image.copied != 0 ? host : try allocateCluster()
        try file.write(at: target, data)
        try setL2Entry(table: table, index: index, target | QCOW2Image.copied)
    }

    /// The L2 table covering `guest`, allocated (zeroed, then linked from L1) when missing.
    private func l2TableForWriting(_ guest: UInt64) throws -> UInt64 {
        let index = l1Index(guest)
        let entry = l1[index]
        let table = entry & QCOW2Image.offsetMask
        if table != 0 {
            guard entry & QCOW2Image.copied != 0 else {
                throw BlockError.unsupported(path: path, feature: "shared L2 tables (refcount above 1)")
            }
            return table
        }
        let fresh = try allocateCluster()
        try file.write(at: fresh, [UInt8](repeating: 0, count: clusterSize))
        l2Tables[fresh] = [UInt64](repeating: 0, count: l2Entries)
        l1[index] = fresh | QCOW2Image.copied
        try file.write(at: header.l1TableOffset + UInt64(index) * 8, QCOW2Image.bigEndian(l1[index]))
        return fresh
    }

    private func setL2Entry(table: UInt64, index: Int, _ value: UInt64) throws {
        try file.write(at: table + UInt64(index) * 8, QCOW2Image.bigEndian(value))
        l2Tables[table]?[index] = value
    }

    // MARK: Refcounts

    private var refcountsPerBlock: Int { clusterSize / 2 }

    /// Appends a cluster to the file with refcount 1 (written before it is used). A cluster
    /// range no refcount block covers yet gets one, placed at the start of that range so it
    /// covers itself.
    private func allocateCluster() throws -> UInt64 {
        while true {
            let offset = fileEnd
            let cluster = Int(offset >> clusterBits)
            let blockIndex = cluster / refcountsPerBlock
            guard blockIndex < refcountTable.count else {
                throw BlockError.unsupported(path: path, feature: "growing the refcount table (the image is larger than its table covers)")
            }
            fileEnd += UInt64(clusterSize)
            if refcountTable[blockIndex] & QCOW2Image.offsetMask == 0 {
                var block = [UInt16](repeating: 0, count: refcountsPerBlock)
                block[cluster % refcountsPerBlock] = 1
                try file.write(at: offset, QCOW2Image.bigEndian16(block))
                refcountBlocks[offset] = block
                refcountTable[blockIndex] = offset
                try file.write(at: header.refcountTableOffset + UInt64(blockIndex) * 8, QCOW2Image.bigEndian(offset))
                continue
            }
            try setRefcount(cluster: cluster, 1)
            return offset
        }
    }

    private func setRefcount(cluster: Int, _ value: UInt16) throws {
        let blockOffset = refcountTable[cluster / refcountsPerBlock] & QCOW2Image.offsetMask
        var block: [UInt16]
        if let cached = refcountBlocks[blockOffset] {
            block = cached
        } else {
            let bytes = try file.read(at: blockOffset, count: clusterSize)
            block = (0..<refcountsPerBlock).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        }
        let slot = cluster % refcountsPerBlock
        block[slot] = value
        refcountBlocks[blockOffset] = block
        try file.write(at: blockOffset + UInt64(slot) * 2, [UInt8(value >> 8), UInt8(value & 0xff)])
    }

    // MARK: Helpers

    static func bigEndianWords(_ bytes: [UInt8]) -> [UInt64] {
        (0..<bytes.count / 8).map { i in (0..<8).reduce(UInt64(0)) { $0 << 8 | UInt64(bytes[8 * i + $1]) } }
    }
    static func bigEndian(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> UInt64(56 - 8 * $0)) } }
    static func bigEndian16(_ values: [UInt16]) -> [UInt8] { values.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] } }
    static func put64(_ b: inout [UInt8], at o: Int, _ v: UInt64) { b.replaceSubrange(o..<o + 8, with: bigEndian(v)) }
    static func put16(_ b: inout [UInt8], at o: Int, _ v: UInt16) { b[o] = UInt8(v >> 8); b[o + 1] = UInt8(v & 0xff) }

    /// QEMU resolves a relative backing name against the directory of the image naming it.
    public static func resolve(backing name: String, of image: String) -> String {
        name.hasPrefix("/") ? name : directoryOf(image) + "/" + name
    }
    static func directoryOf(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
    static func baseName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
    static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}
