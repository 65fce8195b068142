// The reading half of QEMU's QEMUFile. It never trusts a length it reads: every
// caller bounds counts before asking for bytes, and the reader itself only ever
// allocates its fixed buffer, so hostile input ends in an error, not a crash.

public final class QEMUFileReader {
    private let source: ByteSource
    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    private var sourceExhausted = false
    /// Offset of the next unread byte from the start of the stream (for error texts).
    public private(set) var offset: UInt64 = 0
    /// What is being read, for "Unexpected end of migration stream … while reading X".
    var context: ReadContext = ""

    public init(source: ByteSource, bufferSize: Int = 64 * 1024) {
        self.source = source
        // At least a name's worth, so that peeking at a subsection header always fits.
        self.buffer = .allocate(byteCount: max(bufferSize, 512), alignment: 16)
    }

    deinit { buffer.deallocate() }

    private var available: Int { end - start }

    /// Makes at least `count` bytes available; false if the source ends first.
    private func fill(_ count: Int) throws -> Bool {
        precondition(count <= buffer.count)
        if available >= count { return true }
        if start > 0 {
            if available > 0 {
                buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: available)
            }
            end = available
            start = 0
        }
        while available < count && !sourceExhausted {
            let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[end...]))
            if n == 0 { sourceExhausted = true } else { end += n }
        }
        return available >= count
    }

    private func truncated() -> VMStateError {
        .unexpectedEndOfStream(offset: offset + UInt64(available), context: context.description)
    }

    /// True when the source has no more bytes.
    public func atEnd() throws -> Bool { try !fill(1) }

    /// The bytes read from the source but not yet consumed, to look ahead without reading more.
    var buffered: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buffer[start..<end]) }

    public func getByte() throws -> UInt8 {
        guard try fill(1) else { throw truncated() }
        let value = buffer[start]
        start += 1
        offset += 1
        return value
    }

    /// Any fixed-width integer, big-endian.
    public func getBE<T: FixedWidthInteger>(_ type: T.Type = T.self) throws -> T { T(bigEndian: try getInteger()) }
    public func getBE16() throws -> UInt16 { UInt16(bigEndian: try getInteger()) }
    public func getBE32() throws -> UInt32 { UInt32(bigEndian: try getInteger()) }
    public func getBE64() throws -> UInt64 { UInt64(bigEndian: try getInteger()) }

    private func getInteger<T: FixedWidthInteger>() throws -> T {
        let size = MemoryLayout<T>.size
        guard try fill(size) else { throw truncated() }
        let value = buffer.loadUnaligned(fromByteOffset: start, as: T.self)
        start += size
        offset += UInt64(size)
        return value
    }

    /// Fills `destination` completely (a RAM page goes straight into guest memory).
    public func get(into destination: UnsafeMutableRawBufferPointer) throws {
        var done = 0
        while done < destination.count {
            if available == 0 { guard try fill(1) else { throw truncated() } }
            let n = min(available, destination.count - done)
            (destination.baseAddress! + done).copyMemory(from: buffer.baseAddress! + start, byteCount: n)
            start += n
            done += n
            offset += UInt64(n)
        }
    }

    /// Reads `count` bytes into a new array. Callers bound `count` first.
    public func getBytes(_ count: Int) throws -> [UInt8] {
        guard count > 0 else { return [] }
        var result = [UInt8](repeating: 0, count: count)
        try result.withUnsafeMutableBytes { try get(into: $0) }
        return result
    }

    /// Discards `count` bytes without allocating them.
    public func skip(_ count: UInt64) throws {
        var left = count
        while left > 0 {
            if available == 0 { guard try fill(1) else { throw truncated() } }
            let n = Int(min(UInt64(available), left))
            start += n
            left -= UInt64(n)
            offset += UInt64(n)
        }
    }

    /// Looks at up to `count` bytes ahead without consuming them (QEMU's qemu_peek_buffer).
    public func peek(_ count: Int) throws -> [UInt8] {
        _ = try fill(min(count, buffer.count))
        let n = min(count, available)
        return Array(UnsafeRawBufferPointer(rebasing: buffer[start..<(start + n)]))
    }

    /// A name as QEMU writes idstrs: a length byte, then UTF-8.
    public func getName(_ what: String) throws -> String {
        let length = Int(try getByte())
        let bytes = try getBytes(length)
        guard length > 0, let name = String(validating: bytes, as: UTF8.self) else {
            throw VMStateError.invalidName(context: what)
        }
        return name
    }
}

/// What a reader is reading, spelled out only when an error names it: RAM pages are read
/// hundreds of thousands of times a second, and their text is wanted once, if ever.
struct ReadContext: ExpressibleByStringInterpolation, CustomStringConvertible {
    private enum Kind {
        case text(String)
        case ramPage(address: UInt64, block: String)
    }
    private let kind: Kind

    init(stringLiteral value: String) { kind = .text(value) }
    init(stringInterpolation: DefaultStringInterpolation) { kind = .text(String(stringInterpolation: stringInterpolation)) }
    static func ramPage(address: UInt64, block: String) -> ReadContext { ReadContext(kind: .ramPage(address: address, block: block)) }
    private init(kind: Kind) { self.kind = kind }

    var description: String {
        switch kind {
        case .text(let text): text
        case .ramPage(let address, let block): "RAM page at 0x\(hex(address)) of \(block)"
        }
    }
}
