import Crypto
import Foundation
import Testing
import VMState
@testable import Migration

/// Snapshot files: the checksum computed behind the writer is the file's SHA-256, a damaged
/// file is named as damaged on read, and a failed write leaves nothing behind.
struct SnapshotFileTests {
    let directory = NSTemporaryDirectory() + "emupanel-snapshotfile-\(UUID().uuidString)"

    func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        let words = (0..<(count + 7) / 8).map { _ in generator.next() }
        return words.withUnsafeBytes { Array($0.prefix(count)) }
    }

    func sha256Hex(_ data: [UInt8]) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }

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
    func checksumIsTheFilesSHA256(size: Int) throws {
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
        #expect(written.sha256 == sha256Hex(data))
        #expect(try SnapshotFile.read(path, expectedSHA256: written.sha256) { try readAll($0) } == data)
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
            try SnapshotFile.read(path, expectedSHA256: written.sha256) { _ in throw LoadFailed() }
        }
        var damaged = data
        damaged[1 << 20] ^= 1
        try Data(damaged).write(to: URL(fileURLWithPath: path))
        for body in [{ (source: ByteSource) in _ = try readAll(source) }, { _ in throw LoadFailed() }] {
            do {
                try SnapshotFile.read(path, expectedSHA256: written.sha256, body)
                Issue.record("a damaged file was read without complaint")
            } catch let error as SnapshotFileError {
                #expect(error.isChecksumMismatch, "\(error)")
            }
        }
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
    func cycled() -> some Sequence<Element> { sequence(state: 0) { i in defer { i += 1 }; return self[i % count] } }
}
