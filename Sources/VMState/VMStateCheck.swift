// `emupanel vmstate check OLD NEW`: the rules of QEMU's
// scripts/vmstate-static-checker.py applied to two `-dump-vmstate` style dumps.
// OLD is the source of a migration, NEW the destination; run it both ways to
// promise backward migration too. The CLI exits with min(problems, 255).

public struct VMStateCheckProblem: CustomStringConvertible, Equatable, Sendable {
    /// The dump section (device type) the problem is in.
    public let section: String
    public let message: String
    /// True when the problem is only that the destination lacks a subsection. Such state
    /// travels only when its `needed` test holds, which a static check cannot see; the
    /// compatibility matrix shows these as conditional rather than as a refusal.
    public var isMissingSubsection = false
    public var description: String { message }
}

public struct VMStateCheckResult: Sendable {
    public var problems: [VMStateCheckProblem] = []
    /// Not counted, as in QEMU (checking dumps of different machine types).
    public var warnings: [String] = []
    /// The exit status of `vmstate check`: the problem count, capped for the shell.
    public var exitStatus: Int32 { Int32(min(problems.count, 255)) }
}

public struct VMStateCheckError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

public enum VMStateCheck {
    /// Compares the dumps as texts; throws only if one is not a dump at all.
    public static func check(old: String, new: String) throws -> VMStateCheckResult {
        let source: JSONValue
        let destination: JSONValue
        do { source = try JSONValue.parse(old) } catch { throw VMStateCheckError(description: "OLD: \(error)") }
        do { destination = try JSONValue.parse(new) } catch { throw VMStateCheckError(description: "NEW: \(error)") }
        return try check(old: source, new: destination)
    }

    public static func check(old source: JSONValue, new destination: JSONValue) throws -> VMStateCheckResult {
        guard let sections = source.objectValue, destination.objectValue != nil else {
            throw VMStateCheckError(description: "a vmstate dump is a JSON object")
        }
        var checker = Checker()
        for (section, s) in sections {
            // A section QEMU renamed keeps its state (QEMU's get_changed_sec_name).
            guard let d = destination[section] ?? QEMURenames.section(section).flatMap({ destination[$0] }) else {
                checker.problem(section, "Section \"\(section)\" does not exist in dest")
                continue
            }
            if section == "vmschkmachine" {
                let sName = s["Name"]?.stringValue ?? "?"
                let dName = d["Name"]?.stringValue ?? "?"
                if sName != dName {
                    checker.result.warnings.append("Warning: checking incompatible machine types: \"\(sName)\", \"\(dName)\"")
                }
                continue
            }
            // Only the version, not the minimum: the description below carries the same numbers and
            // reports a minimum version error once, as QEMU's checker counts it.
            checker.checkVersion(s, d, section: section, description: nil)
            for (entry, value) in s.objectValue ?? [] {
                guard let other = d[entry] else {
                    checker.problem(section, "Section \"\(section)\": Entry \"\(entry)\" missing")
                    continue
                }
                if entry == "Description" { checker.checkDescriptions(value, other, section: section) }
            }
        }
        return checker.result
    }
}

private struct Checker {
    var result = VMStateCheckResult()

    mutating func problem(_ section: String, _ message: String, missingSubsection: Bool = false) {
        result.problems.append(
            VMStateCheckProblem(
                section: section, message: message,
                isMissingSubsection: missingSubsection))
    }

    /// `description` is nil at section level, where QEMU's checker reports only a version error: a
    /// minimum version error there is left to the description, which has the same numbers.
    mutating func checkVersion(_ s: JSONValue, _ d: JSONValue, section: String, description: String?) {
        let where_ = "Section \"\(section)\"" + (description.map { " Description \"\($0)\":" } ?? "")
        let sVersion = s["version_id"]?.intValue ?? 0
        if let dVersion = d["version_id"]?.intValue, sVersion > dVersion {
            problem(section, "\(where_) version error: \(sVersion) > \(dVersion)")
        }
        if description != nil, let dMinimum = d["minimum_version_id"]?.intValue, sVersion < dMinimum {
            problem(section, "\(where_) minimum version error: \(sVersion) < \(dMinimum)")
        }
    }

    mutating func checkDescriptions(_ s: JSONValue, _ d: JSONValue, section: String) {
        let sName = s["name"]?.stringValue ?? "?"
        let dName = d["name"]?.stringValue ?? "?"
        checkVersion(s, d, section: section, description: sName)
        guard QEMURenames.fieldsMatch(in: section, sName, dName) else {
            problem(section, "Section \"\(section)\": Description \"\(sName)\" missing, got \"\(dName)\" instead; skipping")
            return
        }
        for (entry, value) in s.objectValue ?? [] {
            guard let other = d[entry] else {
                problem(
                    section, "Section \"\(section)\" Description \"\(sName)\": Entry \"\(entry)\" missing",
                    missingSubsection: entry == "Subsections")
                continue
            }
            if entry == "Fields" {
                checkFields(value.arrayValue ?? [], other.arrayValue ?? [], description: sName, section: section)
            } else if entry == "Subsections" {
                checkSubsections(value.arrayValue ?? [], other.arrayValue ?? [], description: sName, section: section)
            }
        }
    }

    /// True when `field` is a struct whose first member is `name` (or a rename of it): fields moved
    /// into a substruct keep the wire format, so the walk descends instead of complaining.
    private func existsInSubstruct(_ field: JSONValue, _ name: String) -> Bool {
        guard let inner = field["Description"], let first = inner["Fields"]?.arrayValue?.first else { return false }
        return QEMURenames.fieldsMatch(in: inner["name"]?.stringValue ?? "", self.name(first), name)
    }

    /// Walks both field lists in wire order, descending into substructs like QEMU's checker, and
    /// letting an `unused` placeholder stand for the fields it replaced (or that replaced it) when
    /// their sizes add up to the same bytes on the wire.
    mutating func checkFields(_ sFields: [JSONValue], _ dFields: [JSONValue], description: String, section: String) {
        var sIter = (fields: sFields, next: 0)
        var dIter = (fields: dFields, next: 0)
        var sStack: [(fields: [JSONValue], next: Int)] = []
        var dStack: [(fields: [JSONValue], next: Int)] = []
        var advanceSource = true
        var advanceDest = true
        var sItem = JSONValue.null
        var dItem = JSONValue.null
        // Bytes of an `unused` field not yet matched by fields on the other side; while it is not
        // zero, the side holding the `unused` field stays put and the other side's fields are counted.
        var unusedBytes: Int64 = 0
        while true {
            if advanceSource {
                if sIter.next < sIter.fields.count {
                    sItem = sIter.fields[sIter.next]
                    sIter.next += 1
                } else {
                    guard let outer = sStack.popLast() else { break }
                    sIter = outer
                    continue
                }
            } else if unusedBytes == 0 {
                advanceSource = true
            }
            if advanceDest {
                if dIter.next < dIter.fields.count {
                    dItem = dIter.fields[dIter.next]
                    dIter.next += 1
                } else {
                    guard let outer = dStack.popLast() else {
                        problem(
                            section,
                            "Section \"\(section)\", Description \"\(description)\": expected field \"\(name(sItem))\", while dest has no further fields"
                        )
                        break
                    }
                    dIter = outer
                    advanceSource = false
                    continue
                }
            } else if unusedBytes == 0 {
                advanceDest = true
            }
            if unusedBytes != 0 {
                // The held side is the one with the `unused` field; the moving side's field is absorbed.
                let absorbed = advanceDest ? dItem : sItem
                unusedBytes -= size(absorbed)
                if unusedBytes == 0 {
                    if advanceDest { advanceSource = true } else { advanceDest = true }
                    continue
                }
                if unusedBytes < 0 {
                    problem(section, "Section \"\(section)\", Description \"\(description)\": unused size mismatch near \"\(name(absorbed))\"")
                    break
                }
                continue
            }
            if !QEMURenames.fieldsMatch(in: description, name(sItem), name(dItem)) {
                if existsInSubstruct(dItem, name(sItem)) {
                    dStack.append(dIter)
                    dIter = (dItem["Description"]?["Fields"]?.arrayValue ?? [], 0)
                    advanceSource = false
                    continue
                }
                if existsInSubstruct(sItem, name(dItem)) {
                    sStack.append(sIter)
                    sIter = (sItem["Description"]?["Fields"]?.arrayValue ?? [], 0)
                    advanceDest = false
                    continue
                }
                if name(sItem) == "unused" || name(dItem) == "unused" {
                    let sSize = totalSize(sItem)
                    let dSize = totalSize(dItem)
                    if sSize == dSize { continue }
                    if name(dItem) == "unused" {
                        advanceDest = false
                        unusedBytes = dSize - sSize
                    } else {
                        advanceSource = false
                        unusedBytes = sSize - dSize
                    }
                    continue
                }
                problem(
                    section,
                    "Section \"\(section)\", Description \"\(description)\": expected field \"\(name(sItem))\", got \"\(name(dItem))\"; skipping rest"
                )
                break
            }
            checkVersion(sItem, dItem, section: section, description: description)
            if sItem["Description"] == nil {
                let sSize = sItem["size"]?.intValue ?? -1
                let dSize = dItem["size"]?.intValue ?? -1
                if sSize != dSize {
                    problem(
                        section, "Section \"\(section)\" Description \"\(description)\" Field \"\(name(sItem))\" size mismatch: \(sSize) , \(dSize)")
                }
            }
            if let sDescription = sItem["Description"] {
                if let dDescription = dItem["Description"] {
                    checkDescriptions(sDescription, dDescription, section: section)
                } else {
                    problem(section, "Section \"\(section)\", Description \"\(description)\", Field \"\(name(sItem))\": missing description")
                }
            }
        }
    }

    mutating func checkSubsections(_ sSubs: [JSONValue], _ dSubs: [JSONValue], description: String, section: String) {
        for s in sSubs {
            let matches = dSubs.filter { $0["name"]?.stringValue == s["name"]?.stringValue }
            if matches.isEmpty {
                problem(
                    section, "Section \"\(section)\", Description \"\(description)\": Subsection \"\(s["name"]?.stringValue ?? "?")\" not found",
                    missingSubsection: true)
            }
            for d in matches { checkDescriptions(s, d, section: section) }
        }
    }

    private func name(_ field: JSONValue) -> String { field["field"]?.stringValue ?? "?" }
    private func size(_ field: JSONValue) -> Int64 { field["size"]?.intValue ?? 0 }
    /// A field's bytes on the wire: newer QEMU dumps give an array's element size and count ("num").
    private func totalSize(_ field: JSONValue) -> Int64 { size(field) * (field["num"]?.intValue ?? 1) }
}
