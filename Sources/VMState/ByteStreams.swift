// The two ends a QEVM stream travels between. One writer and one reader serve
// snapshot files and migration sockets alike, so both only see these protocols.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where a stream's bytes go: a file, a socket, memory.
public protocol ByteSink: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// All of `pieces`, in order, as one write where the sink can (writev): RAM pages go
    /// out from guest memory with their headers between them, never copied into a buffer.
    func write(gathering pieces: [UnsafeRawBufferPointer]) throws
}

extension ByteSink {
    public func write(gathering pieces: [UnsafeRawBufferPointer]) throws {
        for piece in pieces { try write(piece) }
    }
}

/// Writes all of `pieces` with a gathering call (writev(2), sendmsg(2)) that `call` makes for a
/// run of iovecs, resuming after short writes and EINTR. The byte count, or -1 with errno set
/// by the failing call.
public func writeFully(
    gathering pieces: [UnsafeRawBufferPointer],
    _ call: (UnsafePointer<iovec>, Int32) -> Int
) -> Int {
    var vectors = pieces.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
    var total = 0
    var first = 0
    while first < vectors.count {
        let n = vectors.withUnsafeBufferPointer { all in
            call(all.baseAddress! + first, Int32(min(all.count - first, 1024)))
        }
        if n < 0 {
            if errno == EINTR { continue }
            return -1
        }
        total += n
        // Skip what went out whole, trim the piece cut in the middle.
        var left = n
        while first < vectors.count, left >= vectors[first].iov_len {
            left -= vectors[first].iov_len
            first += 1
        }
        if left > 0 {
            vectors[first].iov_base += left
            vectors[first].iov_len -= left
        }
    }
    return total
}

/// Where a stream's bytes come from. `read` returns 0 only at the end of the source.
public protocol ByteSource: AnyObject {
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// Writes to a file descriptor it does not own (the caller opens and closes it).
/// Buffering happens in `QEMUFileWriter`, so every call here is one write(2) loop.
public final class FileDescriptorSink: ByteSink {
    public let fileDescriptor: Int32
    public init(fileDescriptor: Int32) { self.fileDescriptor = fileDescriptor }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = systemWrite(fileDescriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw VMStateError.io(operation: "write", errno: errno)
            }
            offset += n
        }
    }

    public func write(gathering pieces: [UnsafeRawBufferPointer]) throws {
        if writeFully(gathering: pieces, { systemWritev(fileDescriptor, $0, $1) }) < 0 { throw VMStateError.io(operation: "write", errno: errno) }
    }
}

/// Reads from a file descriptor it does not own.
public final class FileDescriptorSource: ByteSource {
    public let fileDescriptor: Int32
    public init(fileDescriptor: Int32) { self.fileDescriptor = fileDescriptor }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard buffer.count > 0 else { return 0 }
        while true {
            let n = systemRead(fileDescriptor, buffer.baseAddress!, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw VMStateError.io(operation: "read", errno: errno)
        }
    }
}

/// Collects a stream in memory: tests, fuzzing and small in-process transfers.
public final class MemorySink: ByteSink {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public func write(_ bytes: UnsafeRawBufferPointer) throws { self.bytes.append(contentsOf: bytes) }
}

/// Serves a byte array as a stream.
public final class MemorySource: ByteSource {
    private let bytes: [UInt8]
    private var offset = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - offset)
        guard n > 0 else { return 0 }
        bytes.withUnsafeBytes { source in
            buffer.baseAddress!.copyMemory(from: source.baseAddress! + offset, byteCount: n)
        }
        offset += n
        return n
    }
}

#if canImport(Glibc)
    private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Glibc.write(fd, p, n) }
    private func systemRead(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Int { Glibc.read(fd, p, n) }
    private func systemWritev(_ fd: Int32, _ v: UnsafePointer<iovec>, _ n: Int32) -> Int { Glibc.writev(fd, v, n) }
#else
    private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Darwin.write(fd, p, n) }
    private func systemRead(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Int { Darwin.read(fd, p, n) }
    private func systemWritev(_ fd: Int32, _ v: UnsafePointer<iovec>, _ n: Int32) -> Int { Darwin.writev(fd, v, n) }
#endif
