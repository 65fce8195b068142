import CXXHash
import Crypto
import Foundation
import TestBoards
import Testing
import VMState

@testable import Migration

/// Snapshot files: the checksum computed behind the writer is the file's XXH3-128 (an earlier
/// release's SHA-256 still checks), a damaged file is named as damaged on read, and a failed
/// write leaves nothing behind.
struct SnapshotFileTests {
    let directory = NSTemporaryDirectory() + "emupanel-snapshotfile-\(UUID().uuidString)"

    func bytes(_ count: Int) -> [UInt8] {
        var generator = SplitMix64(seed: UInt64(count))  // the same bytes on every run
        let words = (0..<(count + 7) / 8).map { _ in generator.next() }
        return words.withUnsafeBytes { Array($0.prefix(count)) }
    }

    func sha256Hex(_ data: [UInt8]) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }

    /// What `xxh128sum` prints for `data`, from libxxhash's one-shot call.
    func xxh128(_ data: [UInt8]) -> String {
        let hash = data.withUnsafeBytes { XXH3_128bits($0.baseAddress, $0.count) }
        return "xxh128:"
            + [hash.high64, hash.low64].map { value in
                let digits = String(value, radix: 16)
                return String(repeating: "0", count: 16 - digits.count) + digits
            }.joined()
    }

    func readAll(_ source: ByteSource) throws -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
            if n == 0 { return out }
            out += buffer[..<n]
        }
    }

    @Test(arguments: [0, 1, 4095, 9 << 20 + 17])
    func checksumIsTheFilesXXH128(size: Int) throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let data = bytes(size)
        let path = directory + "/s.qevm"
        let written = try SnapshotFile.write(to: path) { sink in
            // Uneven writes, as the stream writer's flushes and large pages make them.
            var offset = 0
            for size in [1, 7, 65536, 1 << 20].cycled() {
                guard offset < data.count else { break }
                let n = min(data.count - offset, size)
                try data[offset..<(offset + n)].withUnsafeBytes { try sink.write($0) }
                offset += n
            }
        }
        #expect(written.sizeBytes == Int64(size))
        #expect(written.checksum == xxh128(data))
        #expect(try SnapshotFile.read(path, expectedChecksum: written.checksum) { try readAll($0) } == data)
        #expect(
            try SnapshotFile.read(path, expectedChecksum: sha256Hex(data)) { try readAll($0) } == data,
            "a record from an earlier release, with a SHA-256")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["s.qevm"], "no temporary file left")
    }

    @Test func damagedFileIsNamedDamagedEvenWhenTheLoadAlsoFails() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let data = bytes(3 << 20)
        let path = directory + "/s.qevm"
        let written = try SnapshotFile.write(to: path) { sink in try data.withUnsafeBytes { try sink.write($0) } }
        struct LoadFailed: Error {}
        // Intact: the body's own error comes through.
        #expect(throws: LoadFailed.self) {
            try SnapshotFile.read(path, expectedChecksum: written.checksum) { _ in throw LoadFailed() }
        }
        var damaged = data
        damaged[1 << 20] ^= 1
        try Data(damaged).write(to: URL(fileURLWithPath: path))
        let bodies = [{ (source: ByteSource) in _ = try readAll(source) }, { _ in throw LoadFailed() }]
        for (body, checksum) in zip(bodies + bodies, [written.checksum, written.checksum, sha256Hex(data), sha256Hex(data)]) {
            do {
                try SnapshotFile.read(path, expectedChecksum: checksum, body)
                Issue.record("a damaged file was read without complaint")
            } catch let error as SnapshotFileError {
                #expect(error.isChecksumMismatch, "\(error)")
            }
        }
    }

    @Test func anUnknownChecksumIsRefusedBeforeReading() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/s.qevm"
        _ = try SnapshotFile.write(to: path) { sink in try bytes(100).withUnsafeBytes { try sink.write($0) } }
        var read = false
        #expect(throws: SnapshotFileError.self) {
            try SnapshotFile.read(path, expectedChecksum: "md5:0123") { _ in read = true }
        }
        #expect(!read)
    }

    @Test func failedWriteLeavesNoFile() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        struct Interrupted: Error {}
        #expect(throws: Interrupted.self) {
            try SnapshotFile.write(to: directory + "/s.qevm") { sink in
                try bytes(5 << 20).withUnsafeBytes { try sink.write($0) }
                throw Interrupted()
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }

    @Test func onlyTemporaryFilesCountAsInterruptedWrites() {
        #expect(SnapshotFile.isTemporaryName(".s1.qevm.partial-0BADF00D"))
        #expect(SnapshotFile.isTemporaryName(".managed-save.qevm.partial-12ab34cd"))
        #expect(!SnapshotFile.isTemporaryName(".partial-1.qevm"), "a snapshot named .partial-1")
        #expect(!SnapshotFile.isTemporaryName(".partial-0badf00d"), "no name before the marker")
        #expect(!SnapshotFile.isTemporaryName("s1.qevm.partial-0badf00d"), "not hidden: not ours")
        #expect(!SnapshotFile.isTemporaryName(".s1.qevm.partial-0badf00d.qevm"))
    }
}

extension Array {
    /// Endless repetition, for a loop that stops on its own condition.
    func cycled() -> some Sequence<Element> {
        sequence(state: 0) { i in
            defer { i += 1 }; return self[i % count]
        }
    }
}
