// The writing half of QEMU's QEMUFile: a buffer in front of a ByteSink with
// big-endian integer helpers. Everything in the stream is big-endian (vmstate.c
// uses qemu_put_be*), bools are one byte.

public final class QEMUFileWriter {
    private let sink: ByteSink
    private var buffer: [UInt8]
    private let capacity: Int
    /// Bytes handed to this writer so far; QEMU's "ram transferred" counts these.
    public private(set) var bytesWritten: UInt64 = 0

    public init(sink: ByteSink, bufferSize: Int = 64 * 1024) {
        self.sink = sink
        self.capacity = max(bufferSize, 64)
        self.buffer = []
        self.buffer.reserveCapacity(capacity)
    }

    public func putByte(_ value: UInt8) throws {
        if buffer.count == capacity { try flush() }
        buffer.append(value)
        bytesWritten += 1
    }

    /// Any fixed-width integer, big-endian, as QEMU's qemu_put_be*/vmstate int types.
    public func putBE<T: FixedWidthInteger>(_ value: T) throws { try putInteger(value.bigEndian) }
    public func putBE16(_ value: UInt16) throws { try putInteger(value.bigEndian) }
    public func putBE32(_ value: UInt32) throws { try putInteger(value.bigEndian) }
    public func putBE64(_ value: UInt64) throws { try putInteger(value.bigEndian) }

    private func putInteger<T: FixedWidthInteger>(_ bigEndianValue: T) throws {
        try withUnsafeBytes(of: bigEndianValue) { try put($0) }
    }

    public func put(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count > capacity { try flush() }
        if bytes.count >= capacity {
            // A large block (a RAM page with a tiny buffer) goes straight through: no copy.
            try sink.write(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
        bytesWritten += UInt64(bytes.count)
    }

    public func put(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try put($0) } }

    /// A name as QEMU writes idstrs: one length byte, then the bytes, no terminator.
    public func putName(_ name: String) throws {
        let utf8 = Array(name.utf8)
        try putByte(UInt8(truncatingIfNeeded: min(utf8.count, 255)))
        try put(Array(utf8.prefix(255)))
    }

    public func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try sink.write($0) }
        buffer.removeAll(keepingCapacity: true)
    }
}
