// The rules of QEMU's scripts/vmstate-static-checker.py that only real QEMU dumps
// exercise: `unused` placeholders absorbing the fields they replaced, QEMU's allowed
// field and section renames, and the section-level minimum version. Each test pairs
// two dumps in QEMU's -dump-vmstate layout and expects the script's verdict.
import Testing

@testable import VMState

@Suite struct QEMUCheckerRulesTests {
    /// A field as QEMU dumps it.
    static func field(_ name: String, size: Int, version: Int = 0) -> String {
        #"{"field": "\#(name)", "version_id": \#(version), "field_exists": false, "size": \#(size)}"#
    }

    /// A struct field whose description is `description` with `fields`.
    static func structField(_ name: String, description: String, fields: [String]) -> String {
        #"{"field": "\#(name)", "version_id": 0, "field_exists": false, "size": 8, "Description": "#
            + #"{"name": "\#(description)", "version_id": 1, "minimum_version_id": 1, "Fields": [\#(fields.joined(separator: ", "))]}}"#
    }

    /// One section (device type) with one description holding `fields`.
    static func dump(
        section: String = "dev", description: String? = nil, version: Int = 1, minimum: Int = 1,
        fields: [String], machine: String = "pc-q35-7.2"
    ) -> String {
        #"{"vmschkmachine": {"Name": "\#(machine)"}, "\#(section)": {"Name": "\#(section)", "#
            + #""version_id": \#(version), "minimum_version_id": \#(minimum), "Description": {"name": "\#(description ?? section)", "#
            + #""version_id": \#(version), "minimum_version_id": \#(minimum), "Fields": [\#(fields.joined(separator: ", "))]}}}"#
    }

    static func problems(_ old: String, _ new: String) throws -> [String] {
        try VMStateCheck.check(old: old, new: new).problems.map(\.message)
    }

    // MARK: unused

    @Test func anUnusedPlaceholderAbsorbsTheFieldsItReplaced() throws {
        // e1000 in QEMU 1.x dropped two uint32 fields and sent 8 bytes of `unused` in their place.
        let old = Self.dump(fields: [
            Self.field("a", size: 1), Self.field("b", size: 4), Self.field("c", size: 4),
            Self.field("d", size: 2),
        ])
        let new = Self.dump(fields: [Self.field("a", size: 1), Self.field("unused", size: 8), Self.field("d", size: 2)])
        #expect(try Self.problems(old, new) == [])
        #expect(try Self.problems(new, old) == [])
    }

    @Test func anUnusedPlaceholderOfTheSameSizeMatchesAnyField() throws {
        let old = Self.dump(fields: [Self.field("irr", size: 1), Self.field("isr", size: 1)])
        let new = Self.dump(fields: [Self.field("unused", size: 1), Self.field("isr", size: 1)])
        #expect(try Self.problems(old, new) == [])
        #expect(try Self.problems(new, old) == [])
    }

    @Test func anUnusedPlaceholderThatDoesNotAddUpIsOneProblem() throws {
        let old = Self.dump(fields: [Self.field("b", size: 4), Self.field("c", size: 4), Self.field("d", size: 2)])
        let new = Self.dump(fields: [Self.field("unused", size: 6), Self.field("d", size: 2)])
        #expect(try Self.problems(old, new) == ["Section \"dev\", Description \"dev\": unused size mismatch near \"c\""])
        #expect(try Self.problems(new, old) == ["Section \"dev\", Description \"dev\": unused size mismatch near \"c\""])
    }

    @Test func newerDumpsGiveAnArraysCountAsNum() throws {
        // QEMU ≥ 9.x dumps `num` for arrays: an unused array is size × num bytes.
        let old = Self.dump(fields: [Self.field("x", size: 4), Self.field("y", size: 4)])
        let new = Self.dump(fields: [#"{"field": "unused", "version_id": 0, "field_exists": false, "size": 1, "num": 8}"#])
        #expect(try Self.problems(old, new) == [])
    }

    @Test func withoutTheRuleAPlaceholderWouldBeAFieldMismatch() throws {
        // A field that is not `unused` still has to match by name.
        let old = Self.dump(fields: [Self.field("b", size: 4)])
        let new = Self.dump(fields: [Self.field("unused_b", size: 4)])
        #expect(try Self.problems(old, new) == ["Section \"dev\", Description \"dev\": expected field \"b\", got \"unused_b\"; skipping rest"])
    }

    // MARK: renames

    @Test func fieldsQEMURenamedMatchWithinTheirDescription() throws {
        // piix4_pm: QEMU 1.x `pm1a.sts` became `ar.pm1.evt.sts`, `dev` became `parent_obj`.
        let old = Self.dump(section: "piix4_pm", fields: [Self.field("dev", size: 8), Self.field("pm1a.sts", size: 2)])
        let new = Self.dump(section: "piix4_pm", fields: [Self.field("parent_obj", size: 8), Self.field("ar.pm1.evt.sts", size: 2)])
        #expect(try Self.problems(old, new) == [])
        #expect(try Self.problems(new, old) == [])
        // The same names elsewhere are not a rename.
        let elsewhere = Self.dump(section: "other", fields: [Self.field("dev", size: 8)])
        let renamed = Self.dump(section: "other", fields: [Self.field("parent_obj", size: 8)])
        #expect(try Self.problems(elsewhere, renamed).count == 1)
    }

    @Test func aRenamedFirstFieldStillOpensASubstruct() throws {
        // mch: the old flat `d` is now the first member of a `parent_obj` substruct named "mch".
        let old = Self.dump(section: "mch", fields: [Self.field("d", size: 8), Self.field("smram", size: 1)])
        let new = Self.dump(
            section: "mch",
            fields: [
                Self.structField("wrapper", description: "mch", fields: [Self.field("parent_obj", size: 8)]),
                Self.field("smram", size: 1),
            ])
        #expect(try Self.problems(old, new) == [])
    }

    @Test func descriptionsQEMURenamedMatchWithinTheirSection() throws {
        // usb-tablet's queue description was renamed HIDPointerEventQueue.
        let struct1 = Self.structField("ptr.queue", description: "usb-ptr-queue", fields: [Self.field("xdx", size: 4)])
        let struct2 = Self.structField("ptr.queue", description: "HIDPointerEventQueue", fields: [Self.field("xdx", size: 4)])
        let old = Self.dump(section: "usb-tablet", fields: [struct1])
        let new = Self.dump(section: "usb-tablet", fields: [struct2])
        #expect(try Self.problems(old, new) == [])
        let otherOld = Self.dump(section: "usb-kbd", fields: [struct1])
        let otherNew = Self.dump(section: "usb-kbd", fields: [struct2])
        #expect(
            try Self.problems(otherOld, otherNew)
                == ["Section \"usb-kbd\": Description \"usb-ptr-queue\" missing, got \"HIDPointerEventQueue\" instead; skipping"])
    }

    @Test func sectionsQEMURenamedAreFoundUnderEitherName() throws {
        let old = Self.dump(section: "ICH9 LPC", description: "ICH9LPC", fields: [Self.field("irq", size: 4)])
        let new = Self.dump(section: "ICH9-LPC", description: "ICH9LPC", fields: [Self.field("irq", size: 4)])
        #expect(try Self.problems(old, new) == [])
        #expect(try Self.problems(new, old) == [])
        let gone = Self.dump(section: "ICH9 LPC", fields: [])
        let unrelated = Self.dump(section: "ICH9_LPC", fields: [])
        #expect(try Self.problems(gone, unrelated) == ["Section \"ICH9 LPC\" does not exist in dest"])
    }

    // MARK: section-level minimum version

    @Test func aMinimumVersionErrorCountsOnceAtTheDescription() throws {
        let old = Self.dump(version: 1, minimum: 1, fields: [Self.field("a", size: 4)])
        let new = Self.dump(version: 4, minimum: 3, fields: [Self.field("a", size: 4)])
        #expect(try Self.problems(old, new) == ["Section \"dev\" Description \"dev\": minimum version error: 1 < 3"])
        // A version error is counted at both levels, as QEMU's checker does.
        #expect(
            try Self.problems(new, old) == [
                "Section \"dev\" version error: 4 > 1",
                "Section \"dev\" Description \"dev\": version error: 4 > 1",
            ])
    }
}
