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
