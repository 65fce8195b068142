// Byte-exact checks of the VMState wire encoding (migration/vmstate.c): big-endian
// integers, one-byte bools, subsections after the fields.
import Testing

@testable import VMState

struct Small: Equatable, Sendable {
    var a: UInt8 = 0
    var b: UInt16 = 0
    var c: UInt32 = 0
    var d: UInt64 = 0
    var e: Int32 = 0
    var f = false
    var depth: UInt32 = 16
}

let smallDescription = VMStateDescription<Small>(
    name: "small", versionID: 1, minimumVersionID: 1,
    fields: [.uint8(\.a), .uint16(\.b), .uint32(\.c), .uint64(\.d), .int32(\.e), .bool(\.f)],
    subsections: [
        .init(
            VMStateDescription(
                name: "small/depth", versionID: 3, minimumVersionID: 1,
                fields: [.uint32(\.depth)]),
            needed: { $0.depth != 16 })
    ],
    preLoad: { $0.depth = 16 })

@Suite struct FieldEncodingTests {
    @Test func integersAreBigEndianAndBoolIsOneByte() throws {
        let state = Small(a: 0x11, b: 0x2233, c: 0x4455_6677, d: 0x8899_aabb_ccdd_eeff, e: -2, f: true)
        let (bytes, _) = try encode(state, smallDescription)
        #expect(
            bytes == [
                0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
                0xff, 0xff, 0xff, 0xfe, 0x01,
            ])
    }

    @Test func subsectionFollowsFieldsWithNameAndVersion() throws {
        var state = Small()
        state.depth = 64
        let (bytes, json) = try encode(state, smallDescription)
        let tail = Array(bytes.suffix(1 + 1 + 11 + 4 + 4))
        #expect(tail == [0x05, 11] + Array("small/depth".utf8) + [0, 0, 0, 3] + [0, 0, 0, 64])
        #expect(json["subsections"]?.arrayValue?.first?["vmsd_name"] == .string("small/depth"))
        #expect(try decode(bytes, smallDescription, into: Small(), versionID: 1) == state)
    }

    @Test func absentSubsectionLeavesPreLoadDefault() throws {
        let (bytes, json) = try encode(Small(), smallDescription)
        #expect(json["subsections"] == nil)
        var destination = Small()
        destination.depth = 99  // whatever the destination held must not survive
        #expect(try decode(bytes, smallDescription, into: destination, versionID: 1).depth == 16)
    }

    @Test func everyFieldKindRoundTrips() throws {
        let state = Everything.sample
        let (bytes, _) = try encode(state, Everything.vmstate)
        #expect(try decode(bytes, Everything.vmstate, into: Everything(), versionID: 2) == state)
    }

    @Test func version1StateLoadsInVersion2() throws {
        // What a version-1 description wrote: everything but `late` (since: 2).
        let v1 = VMStateDescription<Everything>(
            name: "everything", versionID: 1, minimumVersionID: 1,
            fields: Everything.vmstate.fields.filter { $0.sinceVersion <= 1 }, subsections: Everything.vmstate.subsections)
        var state = Everything.sample
        let (bytes, _) = try encode(state, v1)
        var destination = Everything()
        destination.late = 7
        let loaded = try decode(bytes, Everything.vmstate, into: destination, versionID: 1)
        state.late = 7  // not in a version-1 stream: the destination keeps its own value
        #expect(loaded == state)
    }

    @Test func fieldExistsPredicateDecidesOnTheLoadedState() throws {
        var state = Everything.sample
        state.flag = false
        state.gated = 0x55
        let (bytes, _) = try encode(state, Everything.vmstate)
        let (withFlag, _) = try encode(Everything.sample, Everything.vmstate)
        #expect(withFlag.count == bytes.count + 2)
        var expected = state
        expected.gated = 0
        #expect(try decode(bytes, Everything.vmstate, into: Everything(), versionID: 2) == expected)
    }

    @Test func versionErrorsNameTheDeviceAndBothVersions() throws {
        let (bytes, _) = try encode(Small(), smallDescription)
        let tooNew = error { try decode(bytes, smallDescription, into: Small(), versionID: 2) }
        #expect(tooNew == .versionTooNew(device: "small", incoming: 2, local: 1))
        #expect(tooNew?.description == "small: incoming version_id 2 is greater than our version_id 1")
        let tooOld = error { try decode(bytes, smallDescription, into: Small(), versionID: 0) }
        #expect(tooOld == .versionTooOld(device: "small", incoming: 0, minimum: 1))
    }

    @Test func unknownSubsectionIsAnError() throws {
        let (bytes, _) = try encode(Small(), smallDescription)
        let bogus = bytes + [0x05, 9] + Array("small/new".utf8) + [0, 0, 0, 1]
        let e = error { try decode(bogus, smallDescription, into: Small(), versionID: 1) }
        #expect(e == .unknownSubsection(name: "small/new", parent: "small", version: 1))
        #expect(e?.description.contains("'small/new'") == true)
    }

    @Test func subsectionVersionIsChecked() throws {
        var state = Small()
        state.depth = 1
        var (bytes, _) = try encode(state, smallDescription)
        bytes[bytes.count - 5] = 4  // the subsection's version_id byte: 3 → 4
        #expect(
            error { try decode(bytes, smallDescription, into: Small(), versionID: 1) }
                == .versionTooNew(device: "small/depth", incoming: 4, local: 3))
    }

    @Test func postLoadRejectsInconsistentState() throws {
        var state = Everything.sample
        state.fifoDepth = 1000
        let (bytes, _) = try encode(state, Everything.vmstate)
        let e = error { try decode(bytes, Everything.vmstate, into: Everything(), versionID: 2) }
        guard case .postLoadFailed(let device, let version, _) = e else {
            Issue.record("expected postLoadFailed, got \(String(describing: e))")
            return
        }
        #expect(device == "everything/fifo-depth" && version == 1)
    }

    @Test func variableBufferLengthIsBounded() throws {
        var state = Everything.sample
        state.dataLength = 3
        var (bytes, _) = try encode(state, Everything.vmstate)
        // dataLength sits after 1+2+4+8+4+8+1+8+3+4+8+32+8+16 = 107 bytes.
        #expect(Array(bytes[107..<111]) == [0, 0, 0, 3])
        bytes.replaceSubrange(107..<111, with: [0xff, 0xff, 0xff, 0xff])
        let e = error { try decode(bytes, Everything.vmstate, into: Everything(), versionID: 2) }
        #expect(
            e
                == .lengthOutOfBounds(
                    device: "everything", version: 2, field: "data", length: 0xffff_ffff,
                    maximum: Everything.maximumData))
    }

    @Test func saveRefusesArraysOfTheWrongLength() throws {
        var state = Everything.sample
        state.regs = [1]
        #expect(
            error { try encode(state, Everything.vmstate) }
                == .fieldSizeMismatch(device: "everything", version: 2, field: "regs", expected: 4, actual: 1))
    }

    @Test func truncatedStateNamesDeviceVersionAndField() throws {
        let (bytes, _) = try encode(Everything.sample, Everything.vmstate)
        for cut in [0, 1, 10, bytes.count / 2, bytes.count - 1] {
            let e = error { try decode(Array(bytes.prefix(cut)), Everything.vmstate, into: Everything(), versionID: 2) }
            guard case .unexpectedEndOfStream(_, let context) = e else {
                Issue.record("cut \(cut): \(String(describing: e))")
                continue
            }
            #expect(context.contains("everything") || context.contains("fifo"))
        }
    }

    @Test func fieldNamesComeFromKeyPaths() {
        #expect(Everything.vmstate.fields.map(\.name).prefix(3) == ["u8", "u16", "u32"])
        #expect(Everything.vmstate.problems() == [])
        #expect(Everything.vmstate.uncoveredProperties(of: Everything()) == [])
    }

    @Test func problemsAreReported() {
        let bad = VMStateDescription<Small>(
            name: "bad", versionID: 1, minimumVersionID: 2, fields: [.uint8(\.a), .uint8(\.a), .uint16(\.b, since: 5)],
            subsections: [
                .init(
                    VMStateDescription(
                        name: "other/x", versionID: 1, minimumVersionID: 1,
                        fields: [.uint32(\.depth)]), needed: { _ in true })
            ])
        let problems = bad.problems()
        #expect(problems.count == 4)
        #expect(bad.uncoveredProperties(of: Small()) == ["c", "d", "e", "f"])
    }
}
