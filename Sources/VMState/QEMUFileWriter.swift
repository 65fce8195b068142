// The writing half of QEMU's QEMUFile: a buffer in front of a ByteSink with
// big-endian integer helpers. Everything in the stream is big-endian (vmstate.c
// uses qemu_put_be*), bools are one byte.

public final class QEMUFileWriter {
    private let sink: ByteSink
    private let buffer: UnsafeMutableRawBufferPointer
    private var used = 0
    /// What the next flush hands the sink, in order: stretches of `buffer` and caller memory
    /// passed to `putReferenced` (QEMU's qemu_put_buffer_async), so RAM pages go to the sink
    /// without being copied here first.
    private var pieces: [UnsafeRawBufferPointer] = []
    /// The start of the buffer's bytes not yet listed in `pieces`.
    private var unlisted = 0
    /// Bytes handed to this writer so far; QEMU's "ram transferred" counts these.
    public private(set) var bytesWritten: UInt64 = 0

    /// At most this many pieces per flush (Linux's IOV_MAX is 1024): 512 pages, 2 MiB.
    static let maximumPieces = 1024

    public init(sink: ByteSink, bufferSize: Int = 64 * 1024) {
        self.sink = sink
        buffer = .allocate(byteCount: max(bufferSize, 64), alignment: 64)
        pieces.reserveCapacity(Self.maximumPieces)
    }

    deinit { buffer.deallocate() }

    public func putByte(_ value: UInt8) throws {
        if used == buffer.count { try flush() }
        buffer[used] = value
        used += 1
        bytesWritten += 1
    }

    /// Any fixed-width integer, big-endian, as QEMU's qemu_put_be*/vmstate int types.
    public func putBE<T: FixedWidthInteger>(_ value: T) throws { try putInteger(value.bigEndian) }
    public func putBE16(_ value: UInt16) throws { try putInteger(value.bigEndian) }
    public func putBE32(_ value: UInt32) throws { try putInteger(value.bigEndian) }
    public func putBE64(_ value: UInt64) throws { try putInteger(value.bigEndian) }

    private func putInteger<T: FixedWidthInteger>(_ bigEndianValue: T) throws {
        let size = MemoryLayout<T>.size
        if used + size > buffer.count { try flush() }
        buffer.storeBytes(of: bigEndianValue, toByteOffset: used, as: T.self)
        used += size
        bytesWritten += UInt64(size)
    }

    public func put(_ bytes: UnsafeRawBufferPointer) throws {
        if used + bytes.count > buffer.count { try flush() }
        if bytes.count >= buffer.count {
            // A block larger than the buffer goes straight through: no copy.
            try sink.write(bytes)
        } else if bytes.count > 0 {
            (buffer.baseAddress! + used).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            used += bytes.count
        }
        bytesWritten += UInt64(bytes.count)
    }

    public func put(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try put($0) } }

    /// Queues `bytes` without copying them: the memory must stay valid until the next `flush`
    /// (guest RAM does). Its content is read only then, as QEMU's qemu_put_buffer_async
    /// reads RAM at writev time: a page the guest changes meanwhile is dirty and goes again.
    public func putReferenced(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        listBuffered()
        pieces.append(bytes)
        bytesWritten += UInt64(bytes.count)
        // Keep room for the buffered stretch that may follow.
        if pieces.count >= Self.maximumPieces - 1 { try flush() }
    }

    /// A name as QEMU writes idstrs: one length byte, then the bytes, no terminator.
    public func putName(_ name: String) throws {
        let utf8 = Array(name.utf8)
        try putByte(UInt8(truncatingIfNeeded: min(utf8.count, 255)))
        try put(Array(utf8.prefix(255)))
    }

    /// Hands everything queued to the sink in one gathered write.
    public func flush() throws {
        listBuffered()
        guard !pieces.isEmpty else { return }
        defer {
            pieces.removeAll(keepingCapacity: true)
            used = 0
            unlisted = 0
        }
        if pieces.count == 1 {
            try sink.write(pieces[0])
        } else {
            try sink.write(gathering: pieces)
        }
    }

    private func listBuffered() {
        guard used > unlisted else { return }
        pieces.append(UnsafeRawBufferPointer(rebasing: buffer[unlisted..<used]))
        unlisted = used
    }
}
