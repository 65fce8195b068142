// The checker on real QEMU dumps (`qemu-system-x86_64 -dump-vmstate`, made at test time):
// each QEMU rule applied to a real device, and — when QEMU_STATIC_CHECKER names QEMU's
// scripts/vmstate-static-checker.py (Debian ships QEMU without its scripts) — seeded
// random changes to a real dump, where both checkers must count the same problems.
import Foundation
import TestBoards
import Testing

@testable import VMState

@Suite struct QEMUDumpCheckTests {
    static let qemu = ["/usr/bin/qemu-system-x86_64", "/usr/local/bin/qemu-system-x86_64"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }
    static var script: String? {
        ProcessInfo.processInfo.environment["QEMU_STATIC_CHECKER"].flatMap {
            FileManager.default.isReadableFile(atPath: $0) ? $0 : nil
        }
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// QEMU's dump of pc-q35-7.2, cut to the sections the rules touch plus a few dozen others
    /// (a debug build checks the whole 800 KB dump slowly).
    static let dump: Result<JSONValue, Error> = Result {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("emupanel-q35-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try run(qemu!, ["-machine", "pc-q35-7.2", "-display", "none", "-dump-vmstate", path])
        let full = try JSONValue.parse(String(contentsOfFile: path, encoding: .utf8))
        let keep: Set = ["vmschkmachine", "ICH9-LPC", "piix4_pm", "e1000", "mch", "apic", "PIIX3", "pcnet", "xhci"]
        let members = full.objectValue ?? []
        return .object(members.filter { keep.contains($0.0) } + members.filter { !keep.contains($0.0) }.prefix(40))
    }

    static func problems(_ old: JSONValue, _ new: JSONValue) throws -> Int {
        try VMStateCheck.check(old: old, new: new).problems.count
    }

    @Test(.enabled(if: qemu != nil, "needs qemu-system-x86_64 (qemu-system-x86)"))
    func qemuRulesOnARealDump() throws {
        let dump = try Self.dump.get()
        #expect(try Self.problems(dump, dump) == 0)
        // ICH9-LPC was once "ICH9 LPC": either name finds the other.
        let renamedSection = DumpEdit.renameSection(dump, "ICH9-LPC", to: "ICH9 LPC")
        #expect(try Self.problems(dump, renamedSection) == 0)
        #expect(try Self.problems(renamedSection, dump) == 0)
        // e1000's `parent_obj` was `dev` in older QEMUs.
        let oldNames = DumpEdit.renameFields(dump, section: "e1000", "parent_obj", to: "dev")
        #expect(try Self.problems(dump, oldNames) == 0)
        #expect(try Self.problems(oldNames, dump) == 0)
        // Fields that became `unused` bytes of the same total size keep the wire format
        // (e1000's rxbuf_size and rxbuf_min_shift, two uint32, as 8 unused bytes).
        let unused = DumpEdit.fieldList(in: dump, section: "e1000") { fields in
            let size = fields[3..<5].reduce(Int64(0)) { $0 + ($1["size"]?.intValue ?? 0) }
            return Array(fields[..<3]) + [DumpEdit.unused(size: size)] + fields[5...]
        }
        #expect(try Self.problems(dump, unused) == 0)
        #expect(try Self.problems(unused, dump) == 0)
        // A minimum version the source does not reach: one problem, at the description.
        let raised = DumpEdit.raiseMinimumVersion(dump, section: "e1000")
        let messages = try VMStateCheck.check(old: dump, new: raised).problems.map(\.message)
        #expect(messages.count == 1)
        #expect(messages.first?.hasPrefix("Section \"e1000\" Description \"e1000\": minimum version error") == true)
    }

    @Test(.enabled(if: qemu != nil && script != nil, "needs qemu-system-x86_64 and QEMU_STATIC_CHECKER"))
    func sameVerdictsAsQEMUsChecker() throws {
        let dump = try Self.dump.get()
        var rng = SplitMix64(seed: 0x7e57_c4ec)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("emupanel-checker-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for round in 0..<60 {
            var old = dump
            var new = dump
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                if Bool.random(using: &rng) { old = DumpEdit.random(old, using: &rng) } else { new = DumpEdit.random(new, using: &rng) }
            }
            try old.serialized().write(toFile: directory + "/old.json", atomically: true, encoding: .utf8)
            try new.serialized().write(toFile: directory + "/new.json", atomically: true, encoding: .utf8)
            let theirs = try Self.run("/usr/bin/python3", [Self.script!, "-s", directory + "/old.json", "-d", directory + "/new.json"])
            let ours = try VMStateCheck.check(old: old, new: new)
            #expect(
                ours.exitStatus == theirs.status,
                "round \(round): QEMU's checker says\n\(theirs.output)\nours:\n\(ours.problems.map(\.message).joined(separator: "\n"))")
        }
    }
}

/// Edits of a dump for the tests above: what QEMU's history did to real devices.
enum DumpEdit {
    static func unused(size: Int64) -> JSONValue {
        .object([("field", .string("unused")), ("version_id", .int(0)), ("field_exists", .bool(false)), ("size", .int(size))])
    }

    static func renameSection(_ dump: JSONValue, _ name: String, to newName: String) -> JSONValue {
        .object((dump.objectValue ?? []).map { $0.0 == name ? (newName, $0.1) : $0 })
    }

    /// Applies `change` to `section`'s top-level field list.
    static func fieldList(in dump: JSONValue, section: String, _ change: ([JSONValue]) -> [JSONValue]) -> JSONValue {
        .object(
            (dump.objectValue ?? []).map { name, value in
                guard name == section else { return (name, value) }
                return (name, replacing(value, path: ["Description", "Fields"]) { .array(change($0.arrayValue ?? [])) })
            })
    }

    static func renameFields(_ dump: JSONValue, section: String, _ old: String, to new: String) -> JSONValue {
        fieldList(in: dump, section: section) { fields in
            fields.map { $0["field"] == .string(old) ? replacing($0, path: ["field"]) { _ in .string(new) } : $0 }
        }
    }

    static func raiseMinimumVersion(_ dump: JSONValue, section: String) -> JSONValue {
        .object(
            (dump.objectValue ?? []).map { name, value in
                guard name == section, let version = value["version_id"]?.intValue else { return (name, value) }
                let raised = replacing(value, path: ["minimum_version_id"]) { _ in .int(version + 1) }
                return (name, replacing(raised, path: ["Description", "minimum_version_id"]) { _ in .int(version + 1) })
            })
    }

    /// One random change of the kinds QEMU's checker has rules for.
    static func random(_ dump: JSONValue, using rng: inout SplitMix64) -> JSONValue {
        var members = dump.objectValue ?? []
        let sections = members.indices.filter {
            members[$0].0 != "vmschkmachine" && members[$0].1["Description"]?["Fields"]?.arrayValue?.isEmpty == false
        }
        guard let index = sections.randomElement(using: &rng) else { return dump }
        let section = members[index].1
        let fields = section["Description"]?["Fields"]?.arrayValue ?? []
        let i = Int.random(in: 0..<fields.count, using: &rng)
        func withFields(_ new: [JSONValue]) -> JSONValue { replacing(section, path: ["Description", "Fields"]) { _ in .array(new) } }
        switch Int.random(in: 0..<9, using: &rng) {
        case 0:
            members[index].1 = withFields(
                fields.enumerated().map { $0.offset == i ? replacing($0.element, path: ["field"]) { _ in .string("unused") } : $0.element })
        case 1:
            let n = min(Int.random(in: 1...3, using: &rng), fields.count - i)
            let size = fields[i..<(i + n)].reduce(Int64(0)) { $0 + ($1["size"]?.intValue ?? 0) } + (Int.random(in: 0..<4, using: &rng) == 0 ? 1 : 0)
            members[index].1 = withFields(Array(fields[..<i]) + [unused(size: size)] + fields[(i + n)...])
        case 2:
            members[index].1 = withFields(
                fields.enumerated().map { $0.offset == i ? replacing($0.element, path: ["size"]) { .int(($0.intValue ?? 0) + 1) } : $0.element })
        case 3: members[index].1 = withFields(fields.enumerated().filter { $0.offset != i }.map(\.element))
        case 4:
            members[index].1 = withFields(
                fields.enumerated().map {
                    $0.offset == i ? replacing($0.element, path: ["field"]) { .string(($0.stringValue ?? "") + "_x") } : $0.element
                })
        case 5: members[index].1 = replacing(section, path: ["Description", "version_id"]) { .int(($0.intValue ?? 0) + 1) }
        case 6: members[index].1 = replacing(section, path: ["Description", "minimum_version_id"]) { .int(($0.intValue ?? 0) + 2) }
        case 7:
            members[index].1 = replacing(
                replacing(section, path: ["version_id"]) { .int(($0.intValue ?? 0) + 1) },
                path: ["minimum_version_id"]
            ) { .int(($0.intValue ?? 0) + 5) }
        default:
            if Bool.random(using: &rng), let lpc = members.firstIndex(where: { $0.0 == "ICH9-LPC" }) {
                members[lpc].0 = "ICH9 LPC"
            } else {
                members.remove(at: index)
            }
        }
        return .object(members)
    }

    /// `value` with the member at `path` replaced by `change` of it (added when missing).
    static func replacing(_ value: JSONValue, path: [String], _ change: (JSONValue) -> JSONValue) -> JSONValue {
        guard let key = path.first, var members = value.objectValue else { return change(value) }
        if let i = members.firstIndex(where: { $0.0 == key }) {
            members[i].1 = replacing(members[i].1, path: Array(path.dropFirst()), change)
        } else {
            members.append((key, change(.null)))
        }
        return .object(members)
    }
}
