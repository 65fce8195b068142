// `qemu-img convert -O qcow2` for one image: a new qcow2 file holding the bytes of any
// BlockDevice (a raw file system made by mke2fs), with clusters that read as zero left
// unallocated so the file stays as small as its data.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension QCOW2Image {
    /// Creates `path` as a qcow2 image of `source`'s size and contents. The file is built under a
    /// temporary name and linked into place once synced, so `path` either does not exist or is
    /// whole; an existing file is never replaced.
    public static func create(path: String, copying source: any BlockDevice) throws {
        if access(path, F_OK) == 0 { throw BlockError.exists(path: path) }
        try placeWhole(path) { temporary in
            try create(path: temporary, sizeBytes: source.sizeBytes)
            let image = try QCOW2Image(path: temporary, writable: true)
            var buffer = [UInt8](repeating: 0, count: image.clusterSize)
            let zeros = [UInt8](repeating: 0, count: image.clusterSize)
            var offset: UInt64 = 0
            while offset < source.sizeBytes {
                let count = Int(min(UInt64(buffer.count), source.sizeBytes - offset))
                try buffer.withUnsafeMutableBytes { try source.read(at: offset, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<count])) }
                // memcmp, not a byte loop: a debug build scans a 256 MiB file system in seconds otherwise.
                if memcmp(buffer, zeros, count) != 0 {
                    try buffer.withUnsafeBytes { try image.write(at: offset, from: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                }
                offset += UInt64(count)
            }
            try image.flush()
        }
    }
}
