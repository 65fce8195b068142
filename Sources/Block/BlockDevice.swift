// What a disk controller sees of a disk: bytes at offsets below a fixed size (QEMU's
// BlockBackend). Images and the chains they form implement it; virtio-blk reads and
// writes through it.

public protocol BlockDevice: AnyObject {
    /// The guest-visible size (a qcow2 image's virtual size).
    var sizeBytes: UInt64 { get }
    var isReadOnly: Bool { get }
    /// Fills `buffer` from `offset`; the range must lie below `sizeBytes`.
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws
    /// Writes `buffer` at `offset`; the range must lie below `sizeBytes`.
    func write(at offset: UInt64, from buffer: UnsafeRawBufferPointer) throws
    /// Makes every completed write durable (the guest's FLUSH).
    func flush() throws
}

/// Why a disk image could not be opened, created, read or written. Each case names the file.
public enum BlockError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, errno: Int32)
    case exists(path: String)
    case io(path: String, operation: String, errno: Int32)
    case notQCOW2(path: String)
    case unsupported(path: String, feature: String)
    case corrupt(path: String, reason: String)
    case readOnly(path: String)
    case outOfRange(path: String, offset: UInt64, count: Int, size: UInt64)
    case backingChainTooLong(path: String)
    case invalidSize(UInt64)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let e): return "cannot open \(path): \(BlockError.text(e))"
        case .exists(let path): return "\(path) already exists"
        case .io(let path, let op, let e): return "\(op) of \(path) failed: \(BlockError.text(e))"
        case .notQCOW2(let path): return "\(path) is not a qcow2 image"
        case .unsupported(let path, let feature): return "\(path) uses \(feature), which emupanel does not support"
        case .corrupt(let path, let reason): return "\(path) is damaged: \(reason)"
        case .readOnly(let path): return "\(path) is open read-only"
        case .outOfRange(let path, let offset, let count, let size):
            return "access to \(count) bytes at \(offset) is beyond the end of \(path) (\(size) bytes)"
        case .backingChainTooLong(let path): return "the backing chain of \(path) is longer than \(QCOW2Image.maximumChainLength) images (a loop?)"
        case .invalidSize(let size): return "invalid disk size \(size) bytes (a multiple of 512, at least 512, at most 2^50)"
        }
    }

    static func text(_ e: Int32) -> String { String(cString: strerror(e)) }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
