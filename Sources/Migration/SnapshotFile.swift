import CFileSync
import CXXHash
import Crypto
import Foundation
import Synchronization
import VMState

/// One snapshot file on disk: written to a temporary file beside its final name, fsynced,
/// renamed, and the directory fsynced, so a crash or a full disk never leaves a half file
/// under a snapshot's name. Its checksum is computed on another thread that reads the file back
/// from the page cache just behind the writer (and starts its writeback), so hashing stays out
/// of the guest's pause and overlaps the fsync.
public enum SnapshotFile {
    public struct Written: Sendable, Equatable {
        public var sizeBytes: Int64
        /// `xxh128:` and the XXH3-128 of the file in hex (`SnapshotChecksum`).
        public var checksum: String
    }

    public static func write(to path: String, _ body: (ByteSink) throws -> Void) throws -> Written {
        let parent = (path as NSString).deletingLastPathComponent
        let directory = parent.isEmpty ? "." : parent
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        let temporary = directory + "/." + (path as NSString).lastPathComponent + partialMarker + UUID().uuidString.prefix(partialTagLength)
        // Readable too: the hasher reads back behind the writer.
        let fd = open(temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SnapshotFileError.io("create \(temporary)", errno) }
        var renamed = false
        defer {
            if !renamed { unlink(temporary) }
        }
        let hasher = TrailingHasher(fileDescriptor: fd, path: temporary, algorithm: .xxh128, startsWriteback: true)
        let sink = HashedFileSink(fileDescriptor: fd, hasher: hasher)
        let checksum: String
        do {
            try body(sink)
            // The hasher finishes its last stretch while fsync waits for the disk.
            let synced = fsync(fd) == 0 ? 0 : errno
            checksum = try hasher.finish(at: sink.count)
            guard synced == 0 else { throw SnapshotFileError.io("fsync \(temporary)", synced) }
        } catch {
            hasher.abandon()
            close(fd)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw SnapshotFileError.io("rename to \(path)", errno) }
        renamed = true
        // Until the directory is synced the new name may not survive a crash: a write whose
        // directory sync fails did not happen, and leaves no file behind.
        if let failure = syncDirectory(directory) {
            unlink(path)
            throw failure
        }
        return Written(sizeBytes: Int64(sink.count), checksum: checksum)
    }

    /// Reads a snapshot file through `body` while another thread hashes it; when the checksum is
    /// not `expectedChecksum` (`SnapshotChecksum`'s forms) this throws `checksumMismatch` after
    /// `body` ran (whatever it threw), so the caller must load into something it can throw away
    /// (a fresh machine).
    @discardableResult
    public static func read<T>(_ path: String, expectedChecksum: String?, _ body: (ByteSource) throws -> T) throws -> T {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SnapshotFileError.io("open \(path)", errno) }
        defer { close(fd) }
        guard let expectedChecksum else { return try body(FileDescriptorSource(fileDescriptor: fd)) }
        guard let algorithm = SnapshotChecksum(recorded: expectedChecksum) else {
            throw SnapshotFileError(description: "\(path): unknown checksum '\(expectedChecksum.prefix(80))'")
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SnapshotFileError.io("stat \(path)", errno) }
        let hasher = TrailingHasher(fileDescriptor: fd, path: path, algorithm: algorithm)
        hasher.fileGrew(to: Int(info.st_size))
        let outcome = Result { try body(FileDescriptorSource(fileDescriptor: fd)) }
        // A damaged file is reported as damaged, even when the damage also made the load fail.
        guard try hasher.finish(at: Int(info.st_size)) == expectedChecksum else {
            throw SnapshotFileError.checksumMismatch(path)
        }
        return try outcome.get()
    }

    /// Removes the temporary files of writes a crash interrupted (the panel killed, the host
    /// down) from `directory`; returns their names. Finished files are never touched: a write
    /// only renames its temporary file once it is complete and synced.
    @discardableResult
    public static func removeInterruptedWrites(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter(isTemporaryName).filter { unlink(directory + "/" + $0) == 0 }
    }

    /// `.NAME.partial-XXXXXXXX` exactly, so a snapshot that a user named `.partial-1` stays.
    public static func isTemporaryName(_ name: String) -> Bool {
        guard name.hasPrefix("."), let marker = name.range(of: partialMarker, options: .backwards),
            marker.lowerBound > name.index(after: name.startIndex)
        else { return false }
        let tag = name[marker.upperBound...]
        return tag.count == partialTagLength && tag.allSatisfy(\.isHexDigit)
    }

    private static let partialMarker = ".partial-"
    private static let partialTagLength = 8

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

    /// fsyncs a directory so the names in it are durable; the error, if it failed.
    private static func syncDirectory(_ directory: String) -> SnapshotFileError? {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return .io("open \(directory)", errno) }
        defer { close(fd) }
        return fsync(fd) == 0 ? nil : .io("fsync \(directory)", errno)
    }
}

public struct SnapshotFileError: Error, CustomStringConvertible {
    public var description: String
    public var isChecksumMismatch = false

    static func checksumMismatch(_ path: String) -> SnapshotFileError {
        SnapshotFileError(description: "\(path) does not match its recorded checksum", isChecksumMismatch: true)
    }

    static func io(_ what: String, _ code: Int32) -> SnapshotFileError {
        SnapshotFileError(description: "\(what): \(String(cString: strerror(code)))")
    }
}

/// Writes a snapshot's bytes to its file and tells the hasher how far the file has grown.
final class HashedFileSink: ByteSink {
    private let file: FileDescriptorSink
    private let hasher: TrailingHasher
    private(set) var count = 0

    init(fileDescriptor: Int32, hasher: TrailingHasher) {
        file = FileDescriptorSink(fileDescriptor: fileDescriptor)
        self.hasher = hasher
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try file.write(bytes)
        count += bytes.count
        hasher.fileGrew(to: count)
    }

    func write(gathering pieces: [UnsafeRawBufferPointer]) throws {
        try file.write(gathering: pieces)
        count += pieces.reduce(0) { $0 + $1.count }
        hasher.fileGrew(to: count)
    }
}

/// The checksum of a snapshot file as its record keeps it. New files get `xxh128:` and the
/// XXH3-128 of the file in hex, as `xxh128sum` prints it: it detects damage as surely as a
/// cryptographic hash for this purpose (nobody forges a snapshot to collide) at several times
/// SHA-256's speed. A bare 64-digit hex string is a SHA-256, which earlier releases recorded.
public enum SnapshotChecksum: Sendable {
    case xxh128
    case sha256

    public init?(recorded: String) {
        if recorded.hasPrefix(Self.xxh128Prefix), recorded.count == Self.xxh128Prefix.count + 32 {
            self = .xxh128
        } else if recorded.count == 64, recorded.allSatisfy(\.isHexDigit) {
            self = .sha256
        } else {
            return nil
        }
    }

    static let xxh128Prefix = "xxh128:"

    func makeDigest() -> any FileDigest {
        switch self {
        case .xxh128: XXH128Digest()
        case .sha256: SHA256Digest()
        }
    }
}

/// A running checksum over a file's bytes.
protocol FileDigest {
    mutating func update(_ bytes: UnsafeRawBufferPointer)
    /// The checksum as a record keeps it.
    mutating func finalize() -> String
}

final class XXH128Digest: FileDigest {
    private let state: OpaquePointer
    init() {
        state = XXH3_createState()
        XXH3_128bits_reset(state)
    }
    deinit { XXH3_freeState(state) }
    func update(_ bytes: UnsafeRawBufferPointer) { XXH3_128bits_update(state, bytes.baseAddress, bytes.count) }
    /// High half first, as `xxh128sum` prints XXH128's canonical (big-endian) form.
    func finalize() -> String {
        let hash = XXH3_128bits_digest(state)
        return SnapshotChecksum.xxh128Prefix + hex(hash.high64) + hex(hash.low64)
    }
    private func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

struct SHA256Digest: FileDigest {
    private var hasher = SHA256()
    mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }
    mutating func finalize() -> String { hasher.finalize().map { String(format: "%02x", $0) }.joined() }
}

/// The checksum of a file being written, computed on its own thread from what the writer has
/// already written (pread from the page cache), so the writer never waits for it.
final class TrailingHasher: Sendable {
    private struct Progress {
        var written = 0
        var end: Int?
        var abandoned = false
    }
    private let progress = Mutex(Progress())
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private let result = Mutex<Result<String, SnapshotFileError>?>(nil)
    private static let writebackStep = 4 << 20

    /// `startsWriteback`: a file being written also has its writeback started every few MiB
    /// once hashed, so the closing fsync has little left to wait for. It is started here, not by
    /// the writer: with the disk busy, sync_file_range waits for room in the device's queue, and
    /// the writer may be holding a guest parked.
    init(fileDescriptor fd: Int32, path: String, algorithm: SnapshotChecksum, startsWriteback: Bool = false) {
        let thread = Thread { [self] in
            let outcome = hashFile(fd: fd, path: path, digest: algorithm.makeDigest(), startsWriteback: startsWriteback)
            result.withLock { $0 = outcome }
            done.signal()
        }
        thread.name = "emupanel-snapshot-hash"
        thread.start()
    }

    func fileGrew(to count: Int) {
        progress.withLock { $0.written = count }
        wake.signal()
    }

    /// Waits until the first `count` bytes are hashed; the checksum.
    func finish(at count: Int) throws -> String {
        progress.withLock {
            $0.end = count; $0.written = count
        }
        wake.signal()
        waitForThread()
        return try result.withLock { $0! }.get()
    }

    /// The write failed: stop hashing and wait for the thread, which reads through the fd.
    func abandon() {
        progress.withLock { $0.abandoned = true }
        wake.signal()
        waitForThread()
    }

    /// Returns once the thread has ended; safe to call again (after a `finish` that threw).
    private func waitForThread() {
        done.wait()
        done.signal()
    }

    private func hashFile(fd: Int32, path: String, digest: any FileDigest, startsWriteback: Bool) -> Result<String, SnapshotFileError> {
        var hasher = digest
        // Small enough to stay in the core's L2 between pread and hash.
        let chunk = 256 << 10
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { buffer.deallocate() }
        var hashed = 0
        var writebackStarted = 0
        while true {
            if startsWriteback, hashed - writebackStarted >= Self.writebackStep {
                // Advisory: a failure here shows up again, and is reported, at fsync.
                _ = emupanel_start_writeback(fd, off_t(writebackStarted), off_t(hashed - writebackStarted))
                writebackStarted = hashed
            }
            let now = progress.withLock { $0 }
            if now.abandoned { return .failure(SnapshotFileError(description: "abandoned")) }
            if hashed < now.written {
                let n = pread(fd, buffer, min(chunk, now.written - hashed), off_t(hashed))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return .failure(.io("read back \(path)", n < 0 ? errno : EIO)) }
                hasher.update(UnsafeRawBufferPointer(start: buffer, count: n))
                hashed += n
            } else if let end = now.end, hashed >= end {
                return .success(hasher.finalize())
            } else {
                wake.wait()
            }
        }
    }
}
