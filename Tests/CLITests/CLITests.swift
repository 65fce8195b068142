// The command line as a user runs it: the built `emupanel` binary in a subprocess,
// checked by exit status, stdout and stderr (SPEC §4). `swift build --build-tests`
// builds the binary next to this test bundle.
import EmulatorCore
import Foundation
import TestBoards
import Testing
import VMState

@Suite("Command line")
struct CLITests {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "emupanel-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: machines, vmstate dump

    @Test func machinesJSONIsTheAPIListShape() throws {
        let result = try emupanel("machines", "--json")
        #expect(result.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let items = try #require(object?["items"] as? [[String: Any]])
        let table = try emupanel("machines")
        #expect(table.status == 0)
        #expect(table.stdout.hasPrefix("NAME"))
        #expect(table.stdout.split(separator: "\n").count == items.count + 1)
        // Whatever registry is wired in, every listed type dumps in QEMU's layout.
        for item in items.prefix(3) {
            let name = try #require(item["name"] as? String)
            let dump = try emupanel("vmstate", "dump", "--machine", name)
            #expect(dump.status == 0)
            let parsed = try JSONValue.parse(dump.stdout)
            #expect(parsed["vmschkmachine"]?["Name"]?.stringValue == name)
        }
    }

    @Test func dumpOfAnUnknownMachineIsOneLineAndExit1() throws {
        let result = try emupanel("vmstate", "dump", "--machine", "no-such-board")
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stderr.contains("'no-such-board'"))
    }

    // MARK: vmstate check

    @Test func checkExitsWithTheNumberOfProblems() throws {
        let v2 = try write("v2.json", dump(uartVersion: 2, timer: true))
        let same = try emupanel("vmstate", "check", v2, v2)
        #expect(same.status == 0)
        #expect(same.stdout.isEmpty)

        // Backward to a release whose UART is version 1 and which has no timer: QEMU's
        // checker counts the version once for the section and once for its description.
        let v1 = try write("v1.json", dump(uartVersion: 1, timer: false))
        let backward = try emupanel("vmstate", "check", v2, v1)
        #expect(backward.status == 3)
        let lines = backward.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines.contains("Section \"ns16550a\" version error: 2 > 1"))
        #expect(lines.contains("Section \"ns16550a\" Description \"ns16550a\": version error: 2 > 1"))
        #expect(lines.contains("Section \"test-timer\" does not exist in dest"))
        #expect(backward.stderr.isEmpty)

        // One problem and bad input both exit 1; only bad input leaves stdout empty.
        let noTimer = try write("v2-notimer.json", dump(uartVersion: 2, timer: false))
        let one = try emupanel("vmstate", "check", v2, noTimer)
        #expect(one.status == 1)
        #expect(one.stdout == "Section \"test-timer\" does not exist in dest\n")
    }

    @Test func checkCapsTheExitStatusAt255() throws {
        let many = JSONValue.object((0..<300).map { ("device-\($0)", .object([("Name", .string("device-\($0)"))])) })
        let old = try write("many.json", many.serialized(indent: 2))
        let empty = try write("empty.json", "{}")
        let result = try emupanel("vmstate", "check", old, empty)
        #expect(result.status == 255)
        #expect(result.stdout.split(separator: "\n").count == 300)
    }

    @Test func checkBadInputIsOneLineOnStderrAndExit1() throws {
        let good = try write("good.json", dump(uartVersion: 2, timer: true))
        let garbage = try write("garbage.json", "{\"vmschkmachine\": ")
        let notADump = try write("array.json", "[1, 2]")
        for arguments in [[good, garbage], [garbage, good], [good, directory + "/missing.json"], [notADump, good]] {
            let result = try emupanel(["vmstate", "check"] + arguments)
            #expect(result.status == 1, "\(arguments)")
            #expect(result.stdout.isEmpty, "\(arguments)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(arguments): \(result.stderr)")
        }
    }

    /// A dump with a UART of `uartVersion` and, optionally, a timer.
    func dump(uartVersion: Int, timer: Bool) -> String {
        var devices = [
            VMStateDump.Device(
                name: "ns16550a",
                description: AnyVMStateDescription(
                    VMStateDescription<TestUART.State>(
                        name: "ns16550a", versionID: uartVersion, minimumVersionID: 1,
                        fields: [.uint8(\.ier), .uint8(\.lsr)])))
        ]
        if timer {
            devices.append(
                VMStateDump.Device(
                    name: "test-timer",
                    description: AnyVMStateDescription(
                        VMStateDescription<TestTimer.State>(
                            name: "test-timer", versionID: 1, minimumVersionID: 1,
                            fields: [.uint64(\.mtimecmp)]))))
        }
        return VMStateDump.render(machineType: "virt-1.0", devices: devices)
    }

    // MARK: snapshot inspect

    @Test func inspectReportsSectionsDevicesAndRAM() throws {
        let machine = try CLIBoard.Machine()
        machine.uart.state = .init(ier: 3, lsr: 0x61, fifoDepth: 64)
        let path = directory + "/guest.qevm"
        try machine.save(to: path)

        let text = try emupanel("snapshot", "inspect", path)
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("machine type   cli-1.0"))
        #expect(text.stdout.contains("ns16550a instance 0  version_id 2"))
        #expect(text.stdout.contains("subsections: ns16550a/fifo-depth v1"))

        let result = try emupanel("snapshot", "inspect", "--json", path)
        #expect(result.status == 0)
        let report = try JSONValue.parse(result.stdout)
        #expect(report["machineType"]?.stringValue == "cli-1.0")
        #expect(report["totalBytes"]?.intValue == Int64(try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int))
        let ram = try #require(report["ram"])
        #expect(ram["totalBytes"] == .int(16384))
        #expect(ram["pages"]?.intValue == 4)
        #expect(ram["zeroPages"]?.intValue == 2)
        #expect(ram["normalPages"]?.intValue == 2)
        #expect(ram["blocks"]?.arrayValue?.first?["idstr"]?.stringValue == "cli.ram")
        let devices = try #require(report["devices"]?.arrayValue)
        #expect(devices.map { $0["name"]?.stringValue } == ["ns16550a", "test-timer"])
        #expect(devices.map { $0["versionId"]?.intValue } == [2, 1])
        #expect(devices[0]["subsections"] == .array([.string("ns16550a/fifo-depth v1")]))
        #expect(devices[1]["stateBytes"]?.intValue == 8)
        let kinds = report["sections"]?.arrayValue?.compactMap { $0["kind"]?.stringValue }
        #expect(kinds == ["start", "end", "full", "full"])
        #expect(report["vmDescriptionBytes"]?.intValue ?? 0 > 0)
    }

    @Test func inspectRefusesGarbageAndDamagedStreams() throws {
        let machine = try CLIBoard.Machine()
        let path = directory + "/guest.qevm"
        try machine.save(to: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))

        var damaged: [String: Data] = [
            "garbage": Data("this is not a snapshot\n".utf8),
            "empty": Data(),
            "truncated": bytes.prefix(bytes.count / 2),
            "no-description": bytes.prefix(bytes.count - 300),
        ]
        // The VMDESCRIPTION's opening brace damaged: the device sections can no longer be sized.
        let descriptionLength = try #require(try QEVMInspector.inspect(Array(bytes)).vmDescriptionBytes)
        var flipped = bytes
        flipped[flipped.count - Int(descriptionLength)] ^= 0xff
        damaged["flipped"] = flipped
        for (name, data) in damaged {
            let file = directory + "/\(name).qevm"
            try data.write(to: URL(fileURLWithPath: file))
            let result = try emupanel("snapshot", "inspect", file)
            #expect(result.status == 1, "\(name)")
            #expect(result.stdout.isEmpty, "\(name)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(name): \(result.stderr)")
        }
        let missing = try emupanel("snapshot", "inspect", directory + "/missing.qevm")
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("missing.qevm"))
    }
}
