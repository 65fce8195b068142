// The QEVM stream (SPEC §2): framing bytes, RAM pages, device sections, and every
// way a stream can be refused before anything is applied.
import Testing

@testable import VMState

@Suite struct StreamTests {
    /// Two device instances of one description, plus 4 pages of RAM, half zero.
    struct Setup {
        let ram = TestRAM(pages: 4) { $0 < 2 * 4096 ? UInt8($0 % 255 + 1) : 0 }
        let first = Box(Everything.sample)
        let second = Box(Small(a: 1, b: 2, c: 3, d: 4, e: 5, f: true, depth: 16))
        var entries: [SaveStateEntry] { [first.entry(Everything.vmstate), second.entry(smallDescription)] }
        func stream() throws -> [UInt8] { try writeStream(ram: [ram.block()], entries: entries) }
    }

    /// A fresh destination: zeroed RAM with a bit of junk, default device state.
    struct Destination {
        let ram = TestRAM(pages: 4) { $0 % 7 == 0 ? 0xee : 0 }
        let first = Box(Everything())
        let second = Box(Small())
        var entries: [SaveStateEntry] { [first.entry(Everything.vmstate), second.entry(smallDescription)] }
        func read(_ bytes: [UInt8], machine: String = "test-1.0") throws -> PendingLoad {
            try readStream(bytes, machine: machine, ram: [ram.block()], entries: entries)
        }
    }

    @Test func headerConfigurationAndRAMStartLayout() throws {
        let bytes = try Setup().stream()
        #expect(Array(bytes[0..<8]) == [0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 3])
        #expect(Array(bytes[8..<21]) == [0x07, 0, 0, 0, 8] + Array("test-1.0".utf8))
        // SECTION_START, id 0, "ram", instance 0, version 4.
        #expect(Array(bytes[21..<38]) == [0x01, 0, 0, 0, 0, 3] + Array("ram".utf8) + [0, 0, 0, 0, 0, 0, 0, 4])
        // Total 16 KiB | MEM_SIZE, then "test.ram" and its length, then EOS, then the footer.
        #expect(Array(bytes[38..<46]) == [0, 0, 0, 0, 0, 0, 0x40, 0x04])
        #expect(Array(bytes[46..<55]) == [8] + Array("test.ram".utf8))
        #expect(Array(bytes[55..<63]) == [0, 0, 0, 0, 0, 0, 0x40, 0])
        #expect(Array(bytes[63..<76]) == [0, 0, 0, 0, 0, 0, 0, 0x10, 0x7e, 0, 0, 0, 0])
    }

    @Test func zeroPagesTravelAsMarkers() throws {
        let setup = Setup()
        let sink = MemorySink()
        let writer = QEVMStreamWriter(sink: sink)
        try writer.writeHeader(machineType: "test-1.0")
        try writer.beginRAM([setup.ram.block()])
        try writer.endRAM(RAMPage.all(in: [setup.ram.block()]))
        #expect(writer.ramStats.normalPages == 2)
        #expect(writer.ramStats.duplicatePages == 2)
        // Two pages of data, two 9-byte zero markers, not 16 KiB.
        #expect(sink.bytes.count < 2 * 4096 + 200)
    }

    @Test func roundTripAppliesOnlyOnCommit() throws {
        let setup = Setup()
        let bytes = try setup.stream()
        let destination = Destination()
        let pending = try destination.read(bytes)
        // RAM lands directly; device state waits for commit.
        #expect(destination.ram.bytes == setup.ram.bytes)
        #expect(destination.first.state == Everything())
        pending.commit()
        #expect(destination.first.state == setup.first.state)
        #expect(destination.second.state == setup.second.state)
        #expect(pending.ramStats.normalPages == 2 && pending.ramStats.duplicatePages == 2)
    }

    @Test func iterativeRAMSectionsCarryDirtyPages() throws {
        let ram = TestRAM(pages: 8) { UInt8($0 % 251 + 1) }
        let device = Box(Small())
        let sink = MemorySink()
        let writer = QEVMStreamWriter(sink: sink)
        try writer.writeHeader(machineType: "test-1.0")
        try writer.beginRAM([ram.block()])
        try writer.writeRAMIteration(RAMPage.all(in: [ram.block()]))
        // The guest dirties pages 2 and 5 while the first pass runs.
        ram.memory[2 * 4096] = 0x42
        ram.memory[5 * 4096 + 9] = 0x43
        try writer.writeRAMIteration([RAMPage(block: 0, index: 2)])
        ram.memory[5 * 4096 + 10] = 0x44
        try writer.endRAM([RAMPage(block: 0, index: 5)])
        try writer.writeDevice(device.entry(smallDescription))
        try writer.finish()
        let destinationRAM = TestRAM(pages: 8)
        let destinationDevice = Box(Small())
        _ = try readStream(sink.bytes, ram: [destinationRAM.block()], entries: [destinationDevice.entry(smallDescription)])
        #expect(destinationRAM.bytes == ram.bytes)
        #expect(writer.ramStats.normalPages == 10)
    }

    @Test func newerSectionVersionFailsBeforeAnythingIsApplied() throws {
        let setup = Setup()
        let bytes = try setup.stream()
        let older = VMStateDescription<Everything>(
            name: "everything", versionID: 1, minimumVersionID: 1,
            fields: Everything.vmstate.fields.filter { $0.sinceVersion <= 1 })
        let destination = Destination()
        let e = error {
            try readStream(
                bytes, ram: [destination.ram.block()],
                entries: [destination.first.entry(older), destination.second.entry(smallDescription)])
        }
        #expect(e == .versionTooNew(device: "everything", incoming: 2, local: 1))
        #expect(e?.description == "everything: incoming version_id 2 is greater than our version_id 1")
        #expect(destination.first.state == Everything())
        #expect(destination.second.state == Small())
    }

    @Test func wrongMagic() throws {
        var bytes = try Setup().stream()
        bytes[0] = 0x51 ^ 0xff
        #expect(error { try Destination().read(bytes) } == .notAMigrationStream(magic: 0xae45_564d))
        bytes = try Setup().stream()
        bytes[7] = 2
        #expect(error { try Destination().read(bytes) }?.description.contains("obsolete") == true)
    }

    @Test func machineTypeMismatchNamesBoth() throws {
        let e = error { try Destination().read(try Setup().stream(), machine: "test-2.0") }
        #expect(e == .machineTypeMismatch(received: "test-1.0", local: "test-2.0"))
        #expect(e?.description == "Machine type received is 'test-1.0' and local is 'test-2.0'")
    }

    @Test func unknownSection() throws {
        let setup = Setup()
        let bytes = try writeStream(
            ram: [setup.ram.block()],
            entries: setup.entries + [Box(Small()).entry(smallDescription, idstr: "stranger")])
        let e = error { try Destination().read(bytes) }
        #expect(e == .unknownSection(name: "stranger", instanceID: 0))
        #expect(e?.description.contains("'stranger' 0") == true)
    }

    @Test func unknownSubsectionInAStream() throws {
        let withExtra = VMStateDescription<Small>(
            name: "small", versionID: 1, minimumVersionID: 1, fields: smallDescription.fields,
            subsections: smallDescription.subsections + [
                .init(
                    VMStateDescription(name: "small/extra", versionID: 1, minimumVersionID: 1, fields: [.uint8(\.a)]),
                    needed: { _ in true })
            ])
        let setup = Setup()
        let bytes = try writeStream(
            ram: [setup.ram.block()],
            entries: [setup.first.entry(Everything.vmstate), setup.second.entry(withExtra)])
        let destination = Destination()
        #expect(error { try destination.read(bytes) } == .unknownSubsection(name: "small/extra", parent: "small", version: 1))
        #expect(destination.first.state == Everything())
    }

    @Test func missingDeviceSection() throws {
        let setup = Setup()
        let bytes = try writeStream(ram: [setup.ram.block()], entries: [setup.first.entry(Everything.vmstate)])
        #expect(error { try Destination().read(bytes) } == .sectionMissing(name: "small", instanceID: 0))
    }

    @Test func everyTruncationIsAnErrorAndAppliesNothing() throws {
        let bytes = try Setup().stream()
        let eof = try lastEOFOffset(bytes)
        // Every prefix that stops before QEMU_VM_EOF must fail (and the caller never gets
        // a PendingLoad to commit); the VMDESCRIPTION after EOF is optional, as in QEMU.
        for cut in 0...eof {
            let destination = Destination()
            #expect(throws: VMStateError.self) { try destination.read(Array(bytes.prefix(cut))) }
        }
        #expect((try? Destination().read(Array(bytes.prefix(eof + 1)))) != nil)
        #expect((try? Destination().read(bytes)) != nil)
    }

    /// The offset of QEMU_VM_EOF: just before the VMDESCRIPTION's 0x06 and length.
    func lastEOFOffset(_ bytes: [UInt8]) throws -> Int {
        for i in stride(from: bytes.count - 6, through: 0, by: -1)
        where bytes[i] == 0x00 && bytes[i + 1] == 0x06 {
            let length = Int(bytes[i + 2]) << 24 | Int(bytes[i + 3]) << 16 | Int(bytes[i + 4]) << 8 | Int(bytes[i + 5])
            if i + 6 + length == bytes.count { return i }
        }
        throw VMStateError.expectedVMDescription(got: 0)
    }

    @Test func footerMismatch() throws {
        var bytes = try Setup().stream()
        // The RAM START section's footer names section 0; make it name 9.
        #expect(bytes[71] == 0x7e)
        bytes[75] = 9
        #expect(
            error { try Destination().read(bytes) }
                == .mismatchedSectionFooter(section: "ram", read: 9, expected: 0))
    }

    @Test func ramBlockOfAnotherSizeIsRefused() throws {
        let bytes = try Setup().stream()
        let ram = TestRAM(pages: 2)
        let destination = Destination()
        #expect(
            error { try readStream(bytes, ram: [ram.block()], entries: destination.entries) }
                == .ramLengthMismatch(block: "test.ram", incoming: 4 * 4096, local: 2 * 4096))
    }

    @Test func vmDescriptionIsValidJSONListingWhatWasSent() throws {
        let bytes = try Setup().stream()
        let eof = try lastEOFOffset(bytes)
        let json = try JSONValue.parse(String(decoding: bytes[(eof + 6)...], as: UTF8.self))
        #expect(json["page_size"] == .int(4096))
        let devices = try #require(json["devices"]?.arrayValue)
        #expect(devices.map { $0["name"]?.stringValue } == ["everything", "small"])
        #expect(devices[0]["vmsd_name"] == .string("everything"))
        #expect(devices[0]["version"] == .int(2))
        #expect(devices[0]["subsections"]?.arrayValue?.count == 1)
        #expect(devices[1]["subsections"] == nil)
    }

    @Test func fileDescriptorSinkAndSourceCarryTheSameStream() throws {
        let setup = Setup()
        let expected = try setup.stream()
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        // A pipe holds 64 KiB; this stream is smaller, so one thread can write then read.
        #expect(expected.count < 60_000)
        let writer = QEVMStreamWriter(sink: FileDescriptorSink(fileDescriptor: fds[1]))
        try writer.writeHeader(machineType: "test-1.0")
        try writer.beginRAM([setup.ram.block()])
        try writer.endRAM(RAMPage.all(in: [setup.ram.block()]))
        for entry in setup.entries { try writer.writeDevice(entry) }
        try writer.finish()
        close(fds[1])
        let destination = Destination()
        let pending = try QEVMStreamReader(
            source: FileDescriptorSource(fileDescriptor: fds[0]), machineType: "test-1.0",
            ramBlocks: [destination.ram.block()], entries: destination.entries
        ).read()
        pending.commit()
        #expect(destination.first.state == setup.first.state)
    }
}

#if canImport(Glibc)
    import Glibc
#endif
