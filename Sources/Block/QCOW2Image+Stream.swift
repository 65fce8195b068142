// Shortening a backing chain the way QEMU's block-stream does: the image pulls every cluster
// its backing image holds and it does not, then skips that image — its backing becomes the
// backing's backing. What the image reads is the same before, during and after, so a layer no
// snapshot needs any more can leave a chain without changing any other snapshot's disk.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension QCOW2Image {
    /// The header of `path`, without opening its backing chain.
    public static func header(of path: String) throws -> QCOW2Header {
        let file = try HostFile(path: path, writable: false)
        let first = try file.read(at: 0, count: 1 << 16)
        let header = try QCOW2Header(parsing: first, path: path)
        guard header.clusterSize > first.count else { return header }
        return try QCOW2Header(parsing: try file.read(at: 0, count: header.clusterSize), path: path)
    }

    /// Guest offsets of the clusters this image holds itself (data or the zero flag), ascending.
    public func allocatedClusters() throws -> [UInt64] {
        var offsets: [UInt64] = []
        for (index, entry) in l1.enumerated() {
            let table = entry & QCOW2Image.offsetMask
            guard table != 0 else { continue }
            for (slot, mapping) in try l2Table(at: table).enumerated()
            where mapping & (QCOW2Image.offsetMask | QCOW2Image.zeroFlag) != 0 {
                let offset = (UInt64(index) * UInt64(l2Entries) + UInt64(slot)) << clusterBits
                if offset < header.size { offsets.append(offset) }
            }
        }
        return offsets
    }

    /// Copies the cluster containing `offset` from the backing chain into this image, unless this
    /// image holds it already (then the guest wrote it since, and it wins). True if it copied.
    @discardableResult
    public func pullFromBacking(clusterAt offset: UInt64) throws -> Bool {
        let start = offset & ~UInt64(clusterSize - 1)
        guard backing != nil, start < header.size, try !isAllocated(at: start) else { return false }
        var data = [UInt8](repeating: 0, count: Int(min(UInt64(clusterSize), header.size - start)))
        try data.withUnsafeMutableBytes { try read(at: start, into: $0) }
        try data.withUnsafeBytes { try write(at: start, from: $0) }
        return true
    }

    /// Takes the backing image out of the chain: this image must already hold every cluster that
    /// image held (`pullFromBacking` for each of its `allocatedClusters`). The header's backing
    /// name becomes the backing's own (relative when both share a directory), written in one
    /// sector and synced; the open chain follows without reopening anything.
    public func dropBackingLayer() throws {
        guard !isReadOnly else { throw BlockError.readOnly(path: path) }
        guard let layer = backing as? QCOW2Image else {
            throw BlockError.unsupported(path: path, feature: "dropping a backing image that is not qcow2")
        }
        let current = try file.read(at: 0, count: max(header.serialized().count, 512))
        guard Array(current[0..<header.serialized().count]) == header.serialized() else {
            throw BlockError.unsupported(path: path, feature: "header extensions that emupanel does not rewrite")
        }
        var updated = header
        updated.backingFile = nil
        updated.backingFormat = nil
        if let below = layer.header.backingFile {
            let resolved = QCOW2Image.resolve(backing: below, of: layer.path)
            updated.backingFile = QCOW2Image.directoryOf(resolved) == QCOW2Image.directoryOf(path) ? QCOW2Image.baseName(resolved) : resolved
            updated.backingFormat = layer.header.backingFormat ?? "qcow2"
        }
        updated.backingFileOffset = updated.backingFile == nil ? 0 : UInt64(updated.nameOffset)
        updated.backingFileSize = UInt32(updated.backingFile?.utf8.count ?? 0)
        var bytes = updated.serialized()
        guard updated.backingFileSize <= 1023, bytes.count <= 512 else {
            throw BlockError.unsupported(path: path, feature: "a backing file name of \(updated.backingFileSize) bytes")
        }
        // The old name's bytes are cleared too: one 512-byte write, which a disk writes whole.
        bytes += [UInt8](repeating: 0, count: 512 - bytes.count)
        try file.write(at: 0, bytes)
        try file.sync()
        header = updated
        backing = layer.backing
    }
}
