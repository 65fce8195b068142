// The machine-independent walk behind `snapshot inspect`, on the fuzz machine's stream.
import Testing

@testable import VMState

@Suite struct InspectorTests {
    @Test func seedStreamIsFullyAccountedFor() throws {
        let bytes = VMStateFuzz.seedStream()
        let report = try QEVMInspector.inspect(bytes)
        #expect(report.machineType == "fuzz-1.0")
        #expect(report.totalBytes == UInt64(bytes.count))
        #expect(report.ram.blocks == [.init(idstr: "fuzz.ram", length: 4 * 4096)])
        #expect((report.ram.pages, report.ram.zeroPages, report.ram.normalPages) == (4, 2, 2))
        #expect(report.devices.map(\.instanceID) == [0, 1])
        #expect(report.devices.allSatisfy { $0.subsections == ["fuzz-device/depth v1"] && $0.versionID == 3 })
        #expect(report.sections.map(\.kind) == ["start", "end", "full", "full"])
        // Every byte belongs to a section, the header, EOF or the VMDESCRIPTION.
        let sectionBytes: UInt64 = report.sections.reduce(0) { $0 + $1.length }
        let header = UInt64(13 + "fuzz-1.0".utf8.count)  // magic, version, type byte, be32 length, name
        let trailer: UInt64 = 1 + 5 + UInt64(report.vmDescriptionBytes ?? 0)
        #expect(header + sectionBytes + trailer == report.totalBytes)
        #expect(report.text().contains("fuzz-device instance 1  version_id 3"))
    }

    @Test func deviceSectionsNeedTheVMDescription() throws {
        var bytes = VMStateFuzz.seedStream()
        let report = try QEVMInspector.inspect(bytes)
        bytes.removeLast(Int(report.vmDescriptionBytes!) + 5)
        let error = #expect(throws: QEVMInspectionError.self) { try QEVMInspector.inspect(bytes) }
        #expect(error?.description.contains("has no VMDESCRIPTION") == true)
    }
}

/// Streams with what QEMU adds for other targets: the configuration section's subsections
/// (target-page-bits, capabilities, uuid) and pages that are not 4 KiB. QEMU 7.2 itself crashes
/// migrating a target whose pages are larger than the host's (a divide error in its RAM save), so
/// this stream is built by hand; QEMU-made streams are in QEMUBackendTests.
@Suite struct ForeignTargetStreamTests {
    /// A LoongArch-like stream: 16 KiB pages, one page with data and one zero page, one device.
    static func stream(pageBits: UInt32 = 14, describedPageSize: Int = 16384, ignoreShared: Bool = true) throws -> [UInt8] {
        let pageSize = 1 << Int(pageBits)
        let sink = MemorySink()
        let file = QEMUFileWriter(sink: sink)
        try file.putBE32(QEMUFileFormat.magic)
        try file.putBE32(QEMUFileFormat.version)
        try file.putByte(QEMUVMSectionType.configuration.rawValue)
        try file.putBE32(4)
        try file.put(Array("virt".utf8))
        try file.putByte(QEMUVMSectionType.subsection.rawValue)
        try file.putName("configuration/target-page-bits")
        try file.putBE32(1)
        try file.putBE32(pageBits)
        if ignoreShared {
            try file.putByte(QEMUVMSectionType.subsection.rawValue)
            try file.putName("configuration/capabilities")
            try file.putBE32(1)
            try file.putBE32(1)
            try file.putName("x-ignore-shared")
        }
        try file.putByte(QEMUVMSectionType.subsection.rawValue)
        try file.putName("configuration/uuid")
        try file.putBE32(1)
        try file.put([UInt8](repeating: 0xab, count: 16))
        // ram: SECTION_START with the block list, then SECTION_END with the pages.
        try file.putByte(QEMUVMSectionType.sectionStart.rawValue)
        try file.putBE32(2)
        try file.putName("ram")
        try file.putBE32(0)
        try file.putBE32(QEMUFileFormat.ramSectionVersion)
        try file.putBE64(UInt64(2 * pageSize) | RAMSaveFlags.memSize.rawValue)
        try file.putName("loongarch.ram")
        try file.putBE64(UInt64(2 * pageSize))
        if ignoreShared { try file.putBE64(0) }
        try file.putBE64(RAMSaveFlags.eos.rawValue)
        try file.putByte(QEMUVMSectionType.sectionFooter.rawValue)
        try file.putBE32(2)
        try file.putByte(QEMUVMSectionType.sectionEnd.rawValue)
        try file.putBE32(2)
        try file.putBE64(RAMSaveFlags.page.rawValue)
        try file.putName("loongarch.ram")
        try file.put([UInt8](repeating: 7, count: pageSize))
        try file.putBE64(UInt64(pageSize) | RAMSaveFlags.zero.rawValue | RAMSaveFlags.continue.rawValue)
        try file.putByte(0)
        try file.putBE64(RAMSaveFlags.eos.rawValue)
        try file.putByte(QEMUVMSectionType.sectionFooter.rawValue)
        try file.putBE32(2)
        try file.putByte(QEMUVMSectionType.sectionFull.rawValue)
        try file.putBE32(3)
        try file.putName("dev")
        try file.putBE32(0)
        try file.putBE32(1)
        try file.putBE32(0x1234_5678)
        try file.putByte(QEMUVMSectionType.sectionFooter.rawValue)
        try file.putBE32(3)
        try file.putByte(QEMUVMSectionType.eof.rawValue)
        let description =
            #"{"page_size": \#(describedPageSize), "devices": [{"name": "dev", "instance_id": 0, "#
            + #""vmsd_name": "dev", "version": 1, "fields": [{"name": "x", "type": "uint32", "size": 4}]}]}"#
        try file.putByte(QEMUVMSectionType.vmDescription.rawValue)
        try file.putBE32(UInt32(description.utf8.count))
        try file.put(Array(description.utf8))
        try file.flush()
        return sink.bytes
    }

    @Test func sixteenKiBPagesAndConfigurationSubsections() throws {
        let report = try QEVMInspector.inspect(try Self.stream())
        #expect(report.machineType == "virt")
        #expect(report.pageSize == 16384)
        #expect(report.capabilities == ["x-ignore-shared"])
        #expect(report.ram.blocks == [.init(idstr: "loongarch.ram", length: 32768)])
        #expect((report.ram.pages, report.ram.zeroPages, report.ram.normalPages) == (2, 1, 1))
        #expect(report.devices.map(\.stateBytes) == [4])
        #expect(report.text().contains("of 16384-byte pages"))
        #expect(report.json()["pageSize"] == .int(16384))
    }

    @Test func thePageSizeMustAgreeAndBeAPageSize() throws {
        let disagreeing = #expect(throws: QEVMInspectionError.self) {
            try QEVMInspector.inspect(try Self.stream(describedPageSize: 4096))
        }
        #expect(disagreeing?.description.contains("disagree with the VMDESCRIPTION's page_size 4096") == true)
        #expect(throws: QEVMInspectionError.self) { try QEVMInspector.inspect(try Self.stream(pageBits: 20, describedPageSize: 1 << 20)) }
        // Without the capability the block list has no addresses: the same walk, one field fewer.
        #expect(try QEVMInspector.inspect(try Self.stream(ignoreShared: false)).ram.normalPages == 1)
    }

    @Test func theLoaderRefusesWhatItCannotMatch() throws {
        // A stream for this machine type but with 16 KiB pages is refused by the loader, not misread.
        let reader = QEVMStreamReader(
            source: MemorySource(try Self.stream(ignoreShared: false)), machineType: "virt",
            ramBlocks: [], entries: [])
        let error = #expect(throws: VMStateError.self) { try reader.read() }
        #expect(error?.description.contains("target_page_bits") == true)
    }
}
