// `vmstate dump` layout (QEMU -dump-vmstate) and `vmstate check` rules
// (QEMU scripts/vmstate-static-checker.py).
import Testing

@testable import VMState

@Suite struct DumpCheckTests {
    func dump(_ devices: [VMStateDump.Device], machine: String = "test-1.0") -> String {
        VMStateDump.render(machineType: machine, devices: devices)
    }

    @Test func dumpHasQEMULayout() throws {
        let text = dump([.init(name: "everything-dev", description: AnyVMStateDescription(Everything.vmstate))])
        let json = try JSONValue.parse(text)
        #expect(json.objectValue?.map(\.0) == ["vmschkmachine", "everything-dev"])
        #expect(json["vmschkmachine"]?["Name"] == .string("test-1.0"))
        let device = try #require(json["everything-dev"])
        #expect(device.objectValue?.map(\.0) == ["Name", "version_id", "minimum_version_id", "Description"])
        let description = try #require(device["Description"])
        #expect(description["name"] == .string("everything"))
        let fields = try #require(description["Fields"]?.arrayValue)
        #expect(fields[0].objectValue?.map(\.0) == ["field", "version_id", "field_exists", "size"])
        #expect(fields.first { $0["field"] == .string("regs") }?["size"] == .int(8))
        #expect(fields.first { $0["field"] == .string("buffer") }?["size"] == .int(8))
        #expect(fields.first { $0["field"] == .string("late") }?["version_id"] == .int(2))
        #expect(fields.first { $0["field"] == .string("gated") }?["field_exists"] == .bool(true))
        let fifo = try #require(fields.first { $0["field"] == .string("fifo") })
        #expect(fifo["size"] == .int(8))
        #expect(fifo["Description"]?["name"] == .string("fifo8"))
        #expect(description["Subsections"]?.arrayValue?.first?["name"] == .string("everything/fifo-depth"))
        #expect(text.hasPrefix("{\n  \"vmschkmachine\": {\n    \"Name\": \"test-1.0\"\n  },"))
    }

    @Test func identicalDumpsPass() throws {
        let a = dump([.init(name: "e", description: AnyVMStateDescription(Everything.vmstate))])
        let result = try VMStateCheck.check(old: a, new: a)
        #expect(result.problems == [])
        #expect(result.exitStatus == 0)
    }

    @Test func versionBumpBreaksBackwardButNotForward() throws {
        let v1 = VMStateDescription<Small>(
            name: "small", versionID: 1, minimumVersionID: 1,
            fields: [.uint8(\.a), .uint16(\.b)])
        let v2 = VMStateDescription<Small>(
            name: "small", versionID: 2, minimumVersionID: 1,
            fields: [.uint8(\.a), .uint16(\.b), .uint32(\.c, since: 2)])
        let old = dump([.init(name: "s", description: AnyVMStateDescription(v1))])
        let new = dump([.init(name: "s", description: AnyVMStateDescription(v2))])
        #expect(try VMStateCheck.check(old: old, new: new).problems == [])
        let backward = try VMStateCheck.check(old: new, new: old)
        #expect(backward.problems.map(\.message).contains("Section \"s\" version error: 2 > 1"))
        #expect(backward.problems.contains { $0.message.contains("Description \"small\": version error: 2 > 1") })
        #expect(backward.problems.contains { $0.message.contains("expected field \"c\", while dest has no further fields") })
    }

    @Test func missingSectionsFieldsSizesAndSubsections() throws {
        let old = VMStateDescription<Small>(
            name: "small", versionID: 1, minimumVersionID: 1, fields: [.uint8(\.a), .uint16(\.b), .uint32(\.c)],
            subsections: smallDescription.subsections)
        let renamed = VMStateDescription<Small>(
            name: "small", versionID: 1, minimumVersionID: 1, fields: [.uint8(\.a), .uint32(\.c), .uint32(\.c, name: "x")])
        let resized = VMStateDescription<Small>(
            name: "small", versionID: 1, minimumVersionID: 1, fields: [.uint8(\.a), .uint32(\.c, name: "b"), .uint32(\.c)],
            subsections: smallDescription.subsections)
        let o = dump([
            .init(name: "s", description: AnyVMStateDescription(old)),
            .init(name: "gone", description: AnyVMStateDescription(smallDescription)),
        ])
        let r1 = try VMStateCheck.check(old: o, new: dump([.init(name: "s", description: AnyVMStateDescription(renamed))]))
        let messages = r1.problems.map(\.message)
        #expect(messages.contains("Section \"gone\" does not exist in dest"))
        #expect(messages.contains { $0.contains("expected field \"b\", got \"c\"; skipping rest") })
        #expect(messages.contains("Section \"s\" Description \"small\": Entry \"Subsections\" missing"))
        #expect(r1.exitStatus == Int32(messages.count))
        let r2 = try VMStateCheck.check(
            old: dump([.init(name: "s", description: AnyVMStateDescription(old))]),
            new: dump([.init(name: "s", description: AnyVMStateDescription(resized))]))
        #expect(r2.problems.map(\.message) == ["Section \"s\" Description \"small\" Field \"b\" size mismatch: 2 , 4"])
    }

    @Test func minimumVersionAndSubsectionNotFound() throws {
        let old = VMStateDescription<Small>(
            name: "small", versionID: 1, minimumVersionID: 1, fields: [.uint8(\.a)],
            subsections: smallDescription.subsections)
        let new = VMStateDescription<Small>(
            name: "small", versionID: 3, minimumVersionID: 2, fields: [.uint8(\.a)],
            subsections: [
                .init(
                    VMStateDescription(
                        name: "small/other", versionID: 1,
                        minimumVersionID: 1, fields: []),
                    needed: { _ in false })
            ])
        let result = try VMStateCheck.check(
            old: dump([.init(name: "s", description: AnyVMStateDescription(old))]),
            new: dump([.init(name: "s", description: AnyVMStateDescription(new))]))
        let messages = result.problems.map(\.message)
        // Reported once, by the description (QEMU's checker counts none at section level).
        #expect(messages.contains("Section \"s\" Description \"small\": minimum version error: 1 < 2"))
        #expect(!messages.contains("Section \"s\" minimum version error: 1 < 2"))
        #expect(messages.count == 2)
        #expect(messages.contains("Section \"s\", Description \"small\": Subsection \"small/depth\" not found"))
    }

    @Test func machineNameDifferenceIsOnlyAWarning() throws {
        let a = dump([], machine: "a-1.0")
        let b = dump([], machine: "b-1.0")
        let result = try VMStateCheck.check(old: a, new: b)
        #expect(result.problems.isEmpty)
        #expect(result.warnings == ["Warning: checking incompatible machine types: \"a-1.0\", \"b-1.0\""])
    }

    @Test func fieldsMovedIntoASubstructKeepTheWireFormat() throws {
        // Old: head, num inline. New: a struct whose first field is `head`.
        let flat = VMStateDescription<Fifo>(
            name: "holder", versionID: 1, minimumVersionID: 1,
            fields: [.uint32(\.head), .uint32(\.num)])
        struct Holder: Sendable { var fifo = Fifo() }
        let nested = VMStateDescription<Holder>(
            name: "holder", versionID: 1, minimumVersionID: 1,
            fields: [
                .nested(
                    \.fifo,
                    VMStateDescription<Fifo>(
                        name: "fifo8", versionID: 1, minimumVersionID: 1,
                        fields: [.uint32(\.head), .uint32(\.num)]))
            ])
        let result = try VMStateCheck.check(
            old: dump([.init(name: "h", description: AnyVMStateDescription(flat))]),
            new: dump([.init(name: "h", description: AnyVMStateDescription(nested))]))
        #expect(result.problems == [])
    }

    @Test func malformedDumpsThrow() {
        #expect(throws: VMStateCheckError.self) { try VMStateCheck.check(old: "[1]", new: "{}") }
        #expect(throws: VMStateCheckError.self) { try VMStateCheck.check(old: "{", new: "{}") }
    }

    @Test func jsonParserRoundTripsAndBoundsDepth() throws {
        let value = JSONValue.object([("a", .array([.int(-1), .bool(true), .null, .string("x\"\n\u{1}é")]))])
        #expect(try JSONValue.parse(value.serialized()) == value)
        #expect(try JSONValue.parse(value.serialized(indent: 2)) == value)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(String(repeating: "[", count: 10_000)) }
    }
}
