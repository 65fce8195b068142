// QEMU's scripts/analyze-migration.py must read an emupanel stream (SPEC §2).
// The script is QEMU's, not ours, so it is not in the repository: the test runs it
// when QEMU_ANALYZE_MIGRATION names it (or a QEMU install ships it) and python3 exists.
import Foundation
import Testing

@testable import VMState

@Suite struct AnalyzeMigrationTests {
    static var script: String? {
        let candidates = [
            ProcessInfo.processInfo.environment["QEMU_ANALYZE_MIGRATION"],
            "/usr/share/qemu/scripts/analyze-migration.py",
            "/usr/lib/qemu/scripts/analyze-migration.py",
        ]
        return candidates.compactMap { $0 }.first { FileManager.default.isReadableFile(atPath: $0) }
    }

    static var python: String? {
        ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Writes a snapshot with every field kind to a file, as the Migration module will.
    static func ramPattern(_ i: Int) -> UInt8 { i < 3 * 4096 ? UInt8(i % 255 + 1) : 0 }

    static func writeSnapshotFile() throws -> URL {
        let ram = TestRAM(pages: 6, fill: ramPattern)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("emupanel-analyze-\(UUID().uuidString).qevm")
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        let writer = QEVMStreamWriter(sink: FileDescriptorSink(fileDescriptor: handle.fileDescriptor))
        try writer.writeHeader(machineType: "test-1.0")
        try writer.beginRAM([ram.block("test.ram")])
        try writer.writeRAMIteration(RAMPage.all(in: [ram.block()]).prefix(4))
        try writer.endRAM(RAMPage.all(in: [ram.block()]).dropFirst(4))
        try writer.writeDevice(Box(Everything.sample).entry(Everything.vmstate))
        try writer.writeDevice(Box(Everything()).entry(Everything.vmstate, instanceID: 1))
        try writer.writeDevice(Box(Small(a: 1, b: 2, c: 3, d: 4, e: -5, f: true)).entry(smallDescription))
        try writer.finish()
        return url
    }

    /// Runs the analyzer with `arguments` in `directory`; returns its stdout.
    static func analyze(_ arguments: [String], in directory: URL? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python!)
        process.arguments = [script!] + arguments
        if let directory { process.currentDirectoryURL = directory }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "analyze-migration.py: \(errorText)")
        return String(decoding: data, as: UTF8.self)
    }

    @Test(.enabled(if: script != nil && python != nil, "needs QEMU's analyze-migration.py and python3"))
    func qemuAnalyzerReadsOurSnapshot() throws {
        let url = try Self.writeSnapshotFile()
        defer { try? FileManager.default.removeItem(at: url) }
        let json = try JSONValue.parse(try Self.analyze(["-f", url.path]))
        #expect(json["ram (0)"]?["section sizes"]?["test.ram"] == .string("0x0000000000006000"))
        let device = try #require(json["everything (1)"])
        #expect(device["u64"] == .string("0x0123456789abcdef"))
        #expect(device["flag"] == .bool(true))
        #expect(device["regs"]?.arrayValue?.count == 4)
        #expect(device["fifo"]?["head"] == .string("0x00000001"))
        #expect(device["everything/fifo-depth"]?["fifoDepth"] == .string("0x00000040"))
        #expect(json["everything (2)"] != nil && json["small (3)"] != nil)
    }

    @Test(.enabled(if: script != nil && python != nil, "needs QEMU's analyze-migration.py and python3"))
    func qemuAnalyzerExtractsOurRAM() throws {
        let url = try Self.writeSnapshotFile()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("emupanel-extract-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(at: url)
            try? FileManager.default.removeItem(at: directory)
        }
        _ = try Self.analyze(["-x", "-f", url.path], in: directory)
        let extracted = try Data(contentsOf: directory.appendingPathComponent("test.ram"))
        #expect(Array(extracted) == (0..<(6 * 4096)).map(Self.ramPattern))
        let description = try JSONValue.parse(String(decoding: try Data(contentsOf: directory.appendingPathComponent("desc.json")), as: UTF8.self))
        #expect(description["devices"]?.arrayValue?.count == 3)
    }
}
