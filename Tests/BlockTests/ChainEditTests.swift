// Converting a raw file system into qcow2, and taking a layer out of a chain (block-stream):
// what the images read never changes, and qemu-img accepts every file written.
import Block
import Foundation
import Testing

@Suite struct ChainEditTests {
    @Test func aConvertedImageHoldsTheSourceAndOnlyItsData() throws {
        let dir = ScratchDirectory()
        let raw = dir.file("fs.raw")
        let image = dir.file("fs.qcow2")
        var bytes = [UInt8](repeating: 0, count: 4 << 20)
        for start in [0, 200_000, (4 << 20) - 5000] {
            let p = pattern(5000, seed: UInt8(start & 0x7f))
            bytes.replaceSubrange(start..<start + p.count, with: p)
        }
        FileManager.default.createFile(atPath: raw, contents: Data(bytes))
        try QCOW2Image.create(path: image, copying: try RawImage(path: raw))
        let converted = try QCOW2Image(path: image, writable: false)
        #expect(converted.sizeBytes == 4 << 20)
        #expect(try converted.read(bytes.count, at: 0) == bytes)
        // Three clusters hold data; the zero ones are not allocated.
        #expect(try converted.allocatedClusters() == [0, 3 << 16, (4 << 20) - (1 << 16)])
        #expect(throws: BlockError.exists(path: image)) { try QCOW2Image.create(path: image, copying: try RawImage(path: raw)) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["fs.qcow2", "fs.raw"])
        if QEMUImg.available {
            #expect(try QEMUImg.run(["check", image]).status == 0)
            #expect(try QEMUImg.run(["compare", "-f", "raw", "-F", "qcow2", raw, image]).status == 0)
        }
    }

    /// base ← middle ← top, each layer writing its own stretch and overwriting some of the one below.
    func threeLayers(in dir: ScratchDirectory) throws -> (base: String, middle: String, top: String, expected: [UInt8]) {
        let base = dir.file("d.base.qcow2")
        let middle = dir.file("d.1.qcow2")
        let top = dir.file("d.qcow2")
        try QCOW2Image.create(path: base, sizeBytes: 2 << 20)
        var expected = [UInt8](repeating: 0, count: 2 << 20)
        func write(_ path: String, _ bytes: [UInt8], at offset: Int) throws {
            let image = try QCOW2Image(path: path)
            try image.write(bytes, at: UInt64(offset))
            try image.flush()
            expected.replaceSubrange(offset..<offset + bytes.count, with: bytes)
        }
        try write(base, pattern(300_000, seed: 1), at: 0)
        try QCOW2Image.create(path: middle, backingFile: "d.base.qcow2")
        try write(middle, pattern(100_000, seed: 2), at: 50_000)
        try write(middle, pattern(10_000, seed: 3), at: 1 << 20)
        try QCOW2Image.create(path: top, backingFile: "d.1.qcow2")
        try write(top, pattern(3000, seed: 4), at: 60_000)
        return (base, middle, top, expected)
    }

    @Test func aLayerStreamedIntoItsOverlayLeavesTheChainReadingTheSame() throws {
        let dir = ScratchDirectory()
        let (base, middle, top, expected) = try threeLayers(in: dir)
        let image = try QCOW2Image(path: top)
        let layer = try #require(image.backing as? QCOW2Image)
        let held = try layer.allocatedClusters()
        #expect(held == [0, 1 << 16, 2 << 16, 16 << 16])
        // The top already holds cluster 0 (its own write there): only the others are copied.
        #expect(try held.map { try image.pullFromBacking(clusterAt: $0) } == [false, true, true, true])
        #expect(try image.read(expected.count, at: 0) == expected)
        try image.dropBackingLayer()
        #expect(image.chain == [top, base])
        #expect(try QCOW2Image.header(of: top).backingFile == "d.base.qcow2")
        #expect(try image.read(expected.count, at: 0) == expected)
        try FileManager.default.removeItem(atPath: middle)
        let reopened = try QCOW2Image(path: top, writable: false)
        #expect(reopened.chain == [top, base])
        #expect(try reopened.read(expected.count, at: 0) == expected)
        if QEMUImg.available {
            let check = try QEMUImg.run(["check", top])
            #expect(check.status == 0, "\(check.output)")
            #expect(try QEMUImg.info(top)["backing-filename"] as? String == "d.base.qcow2")
            let flat = dir.file("flat.raw")
            #expect(try QEMUImg.run(["convert", "-O", "raw", top, flat]).status == 0)
            #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: flat))) == expected)
        }
    }

    @Test func droppingTheBaseLeavesAStandaloneImage() throws {
        let dir = ScratchDirectory()
        let (base, middle, _, _) = try threeLayers(in: dir)
        let image = try QCOW2Image(path: middle)
        let before = try image.read(2 << 20, at: 0)
        for offset in try (image.backing as! QCOW2Image).allocatedClusters() { try image.pullFromBacking(clusterAt: offset) }
        try image.dropBackingLayer()
        #expect(image.chain == [middle])
        #expect(try QCOW2Image.header(of: middle).backingFile == nil)
        try FileManager.default.removeItem(atPath: base)
        #expect(try QCOW2Image(path: middle, writable: false).read(2 << 20, at: 0) == before)
        if QEMUImg.available {
            #expect(try QEMUImg.run(["check", middle]).status == 0)
            #expect(try QEMUImg.info(middle)["backing-filename"] == nil)
        }
    }

    @Test func aReadOnlyImageOrARawBackingIsNotRewritten() throws {
        let dir = ScratchDirectory()
        let (_, _, top, _) = try threeLayers(in: dir)
        let before = try Data(contentsOf: URL(fileURLWithPath: top))
        #expect(throws: BlockError.readOnly(path: top)) { try QCOW2Image(path: top, writable: false).dropBackingLayer() }
        let raw = dir.file("r.raw")
        let over = dir.file("over.qcow2")
        FileManager.default.createFile(atPath: raw, contents: Data(count: 1 << 20))
        try QCOW2Image.create(path: over, backingFile: "r.raw", backingFormat: "raw")
        #expect(throws: BlockError.self) { try QCOW2Image(path: over).dropBackingLayer() }
        #expect(try Data(contentsOf: URL(fileURLWithPath: top)) == before)
    }
}
