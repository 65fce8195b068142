// A raw disk image: guest offset = file offset. Used as a qcow2 backing file
// (backing format "raw"), as QEMU allows.

public final class RawImage: BlockDevice {
    public let path: String
    public let isReadOnly: Bool
    public let sizeBytes: UInt64
    let file: HostFile

    public init(path: String, writable: Bool = false) throws {
        self.path = path
        isReadOnly = !writable
        file = try HostFile(path: path, writable: writable)
        sizeBytes = try file.size
    }

    public func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard offset <= sizeBytes, sizeBytes - offset >= UInt64(buffer.count) else {
            throw BlockError.outOfRange(path: path, offset: offset, count: buffer.count, size: sizeBytes)
        }
        try file.read(at: offset, into: buffer)
    }

    public func write(at offset: UInt64, from buffer: UnsafeRawBufferPointer) throws {
        guard !isReadOnly else { throw BlockError.readOnly(path: path) }
        guard offset <= sizeBytes, sizeBytes - offset >= UInt64(buffer.count) else {
            throw BlockError.outOfRange(path: path, offset: offset, count: buffer.count, size: sizeBytes)
        }
        try file.write(at: offset, from: buffer)
    }

    public func flush() throws {
        if !isReadOnly { try file.sync() }
    }
}
