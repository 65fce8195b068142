import Crypto
import Foundation
import VMState

/// One snapshot file on disk: written to a temporary file beside its final name, fsynced,
/// renamed, and the directory fsynced, so a crash or a full disk never leaves a half file
/// under a snapshot's name. The SHA-256 is computed while writing (no second read).
public enum SnapshotFile {
    public struct Written: Sendable, Equatable {
        public var sizeBytes: Int64
        public var sha256: String
    }

    public static func write(to path: String, _ body: (ByteSink) throws -> Void) throws -> Written {
        let parent = (path as NSString).deletingLastPathComponent
        let directory = parent.isEmpty ? "." : parent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let temporary = directory + "/." + (path as NSString).lastPathComponent + ".partial-" + UUID().uuidString.prefix(8)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SnapshotFileError.io("create \(temporary)", errno) }
        var renamed = false
        defer {
            if !renamed { unlink(temporary) }
        }
        let sink = HashingSink(FileDescriptorSink(fileDescriptor: fd))
        do {
            try body(sink)
            guard fsync(fd) == 0 else { throw SnapshotFileError.io("fsync \(temporary)", errno) }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw SnapshotFileError.io("rename to \(path)", errno) }
        renamed = true
        syncDirectory(directory)
        return Written(sizeBytes: Int64(sink.count), sha256: sink.hexDigest())
    }

    /// SHA-256 of a whole file, hex.
    public static func sha256(of path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SnapshotFileError.io("open \(path)", errno) }
        defer { close(fd) }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw SnapshotFileError.io("read \(path)", errno) }
            if n == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<n])) }
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// The last `count` bytes (the device sections and VMDESCRIPTION), for a preflight that
    /// checks every device before any RAM is touched.
    public static func tail(of path: String, count: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SnapshotFileError.io("open \(path)", errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SnapshotFileError.io("stat \(path)", errno) }
        let size = Int(info.st_size)
        let length = min(size, count)
        var bytes = [UInt8](repeating: 0, count: length)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, off_t(size - length)) }
        guard n == length else { throw SnapshotFileError.io("read \(path)", errno) }
        return bytes
    }

    private static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}

public struct SnapshotFileError: Error, CustomStringConvertible {
    public var description: String
    static func io(_ what: String, _ code: Int32) -> SnapshotFileError {
        SnapshotFileError(description: "\(what): \(String(cString: strerror(code)))")
    }
}

/// Passes bytes on and hashes them on the way.
final class HashingSink: ByteSink {
    private let inner: ByteSink
    private var hasher = SHA256()
    private(set) var count = 0

    init(_ inner: ByteSink) { self.inner = inner }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try inner.write(bytes)
        hasher.update(bufferPointer: bytes)
        count += bytes.count
    }

    func hexDigest() -> String { hasher.finalize().map { String(format: "%02x", $0) }.joined() }
}
