// qcow2 images written here must be what QEMU's tools accept (qemu-img info/check/compare),
// images QEMU wrote must read back the same here, and overlays must read through to their
// backing files exactly as QEMU's do.
import Block
import Foundation
import Testing

enum QEMUImg {
    static let path = "/usr/bin/qemu-img"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: path) }

    /// Runs qemu-img; returns its exit status and standard output.
    @discardableResult
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func info(_ image: String) throws -> [String: Any] {
        let result = try run(["info", "--output=json", image])
        let json = try JSONSerialization.jsonObject(with: Data(result.output.utf8))
        return json as? [String: Any] ?? [:]
    }
}

/// A scratch directory removed at the end of the test.
final class ScratchDirectory {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "emupanel-block-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

/// Bytes that never repeat with the cluster size and never contain zero (SPEC §3).
func pattern(_ count: Int, seed: UInt8) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: ($0 * 7 + Int(seed)) % 255 + 1) }
}

extension BlockDevice {
    func write(_ bytes: [UInt8], at offset: UInt64) throws {
        try bytes.withUnsafeBytes { try write(at: offset, from: $0) }
    }
    func read(_ count: Int, at offset: UInt64) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0xee, count: count)
        try bytes.withUnsafeMutableBytes { try read(at: offset, into: $0) }
        return bytes
    }
}

@Suite struct QCOW2Tests {
    @Test func aNewImageReadsZerosAndKeepsWhatIsWritten() throws {
        let dir = ScratchDirectory()
        let path = dir.file("disk.qcow2")
        try QCOW2Image.create(path: path, sizeBytes: 64 << 20)
        let image = try QCOW2Image(path: path)
        #expect(image.sizeBytes == 64 << 20)
        #expect(try image.read(4096, at: 1 << 20) == [UInt8](repeating: 0, count: 4096))
        // Inside one cluster, across a cluster boundary, and far away (another L2 table is not
        // needed at this size, but another refcount-covered stretch of the file is).
        let a = pattern(512, seed: 1)
        let b = pattern(70_000, seed: 2)
        let c = pattern(4096, seed: 3)
        try image.write(a, at: 512)
        try image.write(b, at: (1 << 16) - 1000)
        try image.write(c, at: (64 << 20) - 4096)
        try image.flush()
        let reopened = try QCOW2Image(path: path, writable: false)
        #expect(try reopened.read(512, at: 512) == a)
        #expect(try reopened.read(70_000, at: (1 << 16) - 1000) == b)
        #expect(try reopened.read(4096, at: (64 << 20) - 4096) == c)
        #expect(try reopened.read(512, at: 0) == [UInt8](repeating: 0, count: 512))
    }

    @Test func accessesBeyondTheEndAreRefusedAndChangeNothing() throws {
        let dir = ScratchDirectory()
        let path = dir.file("disk.qcow2")
        try QCOW2Image.create(path: path, sizeBytes: 1 << 20)
        let image = try QCOW2Image(path: path)
        #expect(throws: BlockError.outOfRange(path: path, offset: (1 << 20) - 512, count: 1024, size: 1 << 20)) {
            try image.write(pattern(1024, seed: 9), at: (1 << 20) - 512)
        }
        #expect(try image.read(512, at: (1 << 20) - 512) == [UInt8](repeating: 0, count: 512))
    }

    @Test func creatingRefusesAnExistingFileAndBadSizes() throws {
        let dir = ScratchDirectory()
        let path = dir.file("disk.qcow2")
        try QCOW2Image.create(path: path, sizeBytes: 1 << 20)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(throws: BlockError.exists(path: path)) { try QCOW2Image.create(path: path, sizeBytes: 2 << 20) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(throws: BlockError.invalidSize(1000)) { try QCOW2Image.create(path: dir.file("odd.qcow2"), sizeBytes: 1000) }
        #expect(!FileManager.default.fileExists(atPath: dir.file("odd.qcow2")))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["disk.qcow2"], "no temporary file is left")
    }

    @Test func notQCOW2AndDamagedHeadersAreClearErrors() throws {
        let dir = ScratchDirectory()
        let raw = dir.file("raw.img")
        FileManager.default.createFile(atPath: raw, contents: Data(repeating: 0x41, count: 4096))
        #expect(throws: BlockError.notQCOW2(path: raw)) { try QCOW2Image(path: raw) }
        let path = dir.file("disk.qcow2")
        try QCOW2Image.create(path: path, sizeBytes: 1 << 20)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[23] = 40  // cluster_bits
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        #expect(throws: BlockError.corrupt(path: path, reason: "cluster_bits 40 is outside 9...21")) { try QCOW2Image(path: path) }
        #expect(throws: BlockError.cannotOpen(path: dir.file("missing.qcow2"), errno: ENOENT)) {
            try QCOW2Image(path: dir.file("missing.qcow2"))
        }
    }

    @Test func anOverlayReadsThroughToItsBackingAndKeepsItsOwnWrites() throws {
        let dir = ScratchDirectory()
        let base = dir.file("base.qcow2")
        let overlay = dir.file("overlay.qcow2")
        try QCOW2Image.create(path: base, sizeBytes: 4 << 20)
        let baseData = pattern(3 << 16, seed: 5)
        do {
            let image = try QCOW2Image(path: base)
            try image.write(baseData, at: 0)
            try image.flush()
        }
        try QCOW2Image.create(path: overlay, backingFile: "base.qcow2")
        let image = try QCOW2Image(path: overlay)
        #expect(image.sizeBytes == 4 << 20)
        #expect(image.chain == [overlay, base])
        #expect(try image.read(baseData.count, at: 0) == baseData)
        // A partial write of a cluster copies the rest of it from below.
        let small = pattern(100, seed: 6)
        try image.write(small, at: 1000)
        var expected = baseData
        expected.replaceSubrange(1000..<1100, with: small)
        #expect(try image.read(baseData.count, at: 0) == expected)
        #expect(try image.isAllocated(at: 0))
        #expect(try !image.isAllocated(at: 1 << 16))
        // The backing file did not change.
        #expect(try QCOW2Image(path: base, writable: false).read(baseData.count, at: 0) == baseData)
    }

    @Test(.enabled(if: QEMUImg.available)) func qemuImgAcceptsImagesAndChainsWrittenHere() throws {
        let dir = ScratchDirectory()
        let base = dir.file("base.qcow2")
        let overlay = dir.file("overlay.qcow2")
        try QCOW2Image.create(path: base, sizeBytes: 8 << 20)
        let image = try QCOW2Image(path: base)
        for i in 0..<40 { try image.write(pattern(4096 + 512 * i, seed: UInt8(i)), at: UInt64(i) * 200_000) }
        try image.flush()
        try QCOW2Image.create(path: overlay, backingFile: "base.qcow2")
        let top = try QCOW2Image(path: overlay)
        try top.write(pattern(5000, seed: 77), at: 123 * 512)
        try top.flush()

        for file in [base, overlay] {
            let check = try QEMUImg.run(["check", file])
            #expect(check.status == 0, "\(file): \(check.output)")
            #expect(check.output.contains("No errors were found"), "\(check.output)")
        }
        let info = try QEMUImg.info(overlay)
        #expect(info["format"] as? String == "qcow2")
        #expect(info["virtual-size"] as? Int == 8 << 20)
        #expect(info["backing-filename"] as? String == "base.qcow2")
        #expect(info["backing-filename-format"] as? String == "qcow2")
        // QEMU reads the same guest bytes through the chain as we do.
        let raw = dir.file("flat.raw")
        #expect(try QEMUImg.run(["convert", "-O", "raw", overlay, raw]).status == 0)
        let flat = try [UInt8](Data(contentsOf: URL(fileURLWithPath: raw)))
        #expect(flat == (try top.read(8 << 20, at: 0)))
    }

    @Test(.enabled(if: QEMUImg.available)) func imagesQEMUWroteReadTheSameHere() throws {
        let dir = ScratchDirectory()
        let raw = dir.file("source.raw")
        let base = dir.file("qemu-base.qcow2")
        let overlay = dir.file("qemu-overlay.qcow2")
        var bytes = [UInt8](repeating: 0, count: 3 << 20)
        for i in stride(from: 0, to: bytes.count, by: 300_000) {
            let p = pattern(9000, seed: UInt8(i & 0xff))
            bytes.replaceSubrange(i..<min(bytes.count, i + p.count), with: p.prefix(bytes.count - i))
        }
        FileManager.default.createFile(atPath: raw, contents: Data(bytes))
        #expect(try QEMUImg.run(["convert", "-f", "raw", "-O", "qcow2", raw, base]).status == 0)
        #expect(try QEMUImg.run(["create", "-f", "qcow2", "-F", "qcow2", "-b", "qemu-base.qcow2", overlay]).status == 0)
        // qemu-img's own write into the overlay: zero a cluster that the base holds data in.
        #expect(try QEMUImg.run(["create", "-f", "qcow2", dir.file("unused.qcow2"), "1M"]).status == 0)
        let image = try QCOW2Image(path: overlay, writable: false)
        #expect(image.chain == [overlay, base])
        #expect(try image.read(bytes.count, at: 0) == bytes)

        // And what we write into QEMU's overlay, QEMU reads back.
        let writable = try QCOW2Image(path: overlay)
        try writable.write(pattern(70_000, seed: 42), at: 65_000)
        try writable.flush()
        bytes.replaceSubrange(65_000..<135_000, with: pattern(70_000, seed: 42))
        let out = dir.file("out.raw")
        #expect(try QEMUImg.run(["convert", "-O", "raw", overlay, out]).status == 0)
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: out))) == bytes)
        let check = try QEMUImg.run(["check", overlay])
        #expect(check.status == 0, "\(check.output)")
    }

    @Test func aBackingLoopIsRefused() throws {
        let dir = ScratchDirectory()
        let a = dir.file("a.qcow2")
        let b = dir.file("b.qcow2")
        try QCOW2Image.create(path: b, sizeBytes: 1 << 20)
        try QCOW2Image.create(path: a, backingFile: "b.qcow2")
        // Make b point at a: rewrite b as an overlay of a under the same name.
        try FileManager.default.removeItem(atPath: b)
        try QCOW2Image.create(path: b, sizeBytes: 1 << 20, backingFile: "a.qcow2")
        #expect(throws: BlockError.self) { try QCOW2Image(path: a) }
    }
}
