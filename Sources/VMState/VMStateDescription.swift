// QEMU's VMStateDescription as a Swift value: a device's saved state is one
// constant table over its `State` struct. Loading works on a copy of that struct,
// so a load that fails half-way leaves the device exactly as it was.

public struct VMStateDescription<State>: Sendable {
    public typealias PreSave = @Sendable (_ state: inout State) throws -> Void
    public typealias PreLoad = @Sendable (_ state: inout State) throws -> Void
    public typealias PostLoad = @Sendable (_ state: inout State, _ versionID: Int) throws -> Void

    public let name: String
    public let versionID: Int
    public let minimumVersionID: Int
    public let fields: [VMStateField<State>]
    public let subsections: [VMStateSubsection<State>]
    /// Stored properties of `State` that deliberately do not travel (derived values that
    /// `postLoad` rebuilds). Every other stored property must be covered by a field,
    /// otherwise registration refuses the device: QEMU would silently drop that state.
    public let notMigrated: [String]
    /// Runs on the copy being saved (e.g. to fill a field kept only for the wire).
    public let preSave: PreSave?
    /// Plants defaults before fields arrive, so a subsection that is absent leaves its
    /// state at the default, not at whatever the destination happened to hold.
    public let preLoad: PreLoad?
    /// Rebuilds derived values and rejects inconsistent state; throwing aborts the load.
    public let postLoad: PostLoad?

    public init(
        name: String, versionID: Int, minimumVersionID: Int, fields: [VMStateField<State>],
        subsections: [VMStateSubsection<State>] = [], notMigrated: [String] = [],
        preSave: PreSave? = nil, preLoad: PreLoad? = nil, postLoad: PostLoad? = nil
    ) {
        self.name = name
        self.versionID = versionID
        self.minimumVersionID = minimumVersionID
        self.fields = fields
        self.subsections = subsections
        self.notMigrated = notMigrated
        self.preSave = preSave
        self.preLoad = preLoad
        self.postLoad = postLoad
    }

    /// Bytes the fields occupy when every one is present (`-dump-vmstate`'s struct "size").
    public var staticSize: Int { fields.reduce(0) { $0 + $1.size * ($1.arrayLength ?? 1) } }

    // MARK: Saving (vmstate_save_state)

    /// Writes the fields present at `versionID`, then every `needed` subsection, and
    /// returns this description's VMDESCRIPTION entry for what was written.
    @discardableResult
    public func save(_ state: State, to out: QEMUFileWriter) throws -> JSONValue {
        var state = state
        if let preSave {
            do { try preSave(&state) } catch let error as VMStateError { throw error } catch {
                throw VMStateError.preSaveFailed(device: name, version: versionID, reason: "\(error)")
            }
        }
        var fieldEntries: [JSONValue] = []
        for field in fields where field.isPresent(state, versionID: versionID) {
            let context = FieldContext(device: name, versionID: versionID, field: field.name)
            fieldEntries += try field.saveBody(state, out, context)
        }
        var subsectionEntries: [JSONValue] = []
        for subsection in subsections where subsection.needed(state) {
            let description = subsection.description
            try out.putByte(QEMUVMSectionType.subsection.rawValue)
            try out.putName(description.name)
            try out.putBE32(UInt32(truncatingIfNeeded: description.versionID))
            subsectionEntries.append(try description.save(state, to: out))
        }
        var entry: [(String, JSONValue)] = [
            ("vmsd_name", .string(name)), ("version", .int(Int64(versionID))), ("fields", .array(fieldEntries)),
        ]
        if !subsectionEntries.isEmpty { entry.append(("subsections", .array(subsectionEntries))) }
        return .object(entry)
    }

    // MARK: Loading (vmstate_load_state, vmstate_subsection_load)

    /// Loads `versionID`-format state into `state`. `enclosed` is true inside another
    /// description: a subsection whose name is not ours then belongs to the encloser.
    public func load(
        _ state: inout State, from input: QEMUFileReader, versionID incoming: Int,
        enclosed: Bool = false
    ) throws {
        guard incoming <= versionID else {
            throw VMStateError.versionTooNew(device: name, incoming: incoming, local: versionID)
        }
        guard incoming >= minimumVersionID else {
            throw VMStateError.versionTooOld(device: name, incoming: incoming, minimum: minimumVersionID)
        }
        if let preLoad {
            do { try preLoad(&state) } catch let error as VMStateError { throw error } catch {
                throw VMStateError.postLoadFailed(device: name, version: incoming, reason: "pre_load: \(error)")
            }
        }
        for field in fields where field.isPresent(state, versionID: incoming) {
            input.context = "'\(name)' version_id \(incoming) field '\(field.name)'"
            try field.loadBody(&state, input, FieldContext(device: name, versionID: incoming, field: field.name))
        }
        try loadSubsections(&state, from: input, versionID: incoming, enclosed: enclosed)
        if let postLoad {
            do { try postLoad(&state, incoming) } catch let error as VMStateError { throw error } catch {
                throw VMStateError.postLoadFailed(device: name, version: incoming, reason: "\(error)")
            }
        }
    }

    private func loadSubsections(
        _ state: inout State, from input: QEMUFileReader, versionID: Int,
        enclosed: Bool
    ) throws {
        while true {
            let head = try input.peek(2)
            guard head.count == 2, head[0] == QEMUVMSectionType.subsection.rawValue else { return }
            let length = Int(head[1])
            let peeked = try input.peek(2 + length)
            // Too short: leave the bytes for the caller, whose next read reports the truncation.
            guard peeked.count == 2 + length else { return }
            guard length > 0, let subsectionName = String(validating: peeked[2...], as: UTF8.self) else {
                throw VMStateError.invalidName(context: "subsection of '\(name)'")
            }
            if enclosed && !subsectionName.hasPrefix(name) { return }
            guard let subsection = subsections.first(where: { $0.description.name == subsectionName }) else {
                throw VMStateError.unknownSubsection(name: subsectionName, parent: name, version: versionID)
            }
            try input.skip(UInt64(2 + length))
            input.context = "subsection '\(subsectionName)' header"
            let subsectionVersion = Int(try input.getBE32())
            try subsection.description.load(&state, from: input, versionID: subsectionVersion, enclosed: true)
        }
    }

    // MARK: Checks done at registration

    /// Problems that make this description unusable on the wire; empty when fine.
    public func problems() -> [String] {
        var problems: [String] = []
        let nameLength = name.utf8.count
        if nameLength == 0 || nameLength > QEMUFileFormat.maximumNameLength {
            problems.append("'\(name)': name must be 1–\(QEMUFileFormat.maximumNameLength) bytes")
        }
        if minimumVersionID < 0 || minimumVersionID > versionID {
            problems.append("'\(name)': minimum_version_id \(minimumVersionID) must lie in 0…version_id \(versionID)")
        }
        var seen = Set<String>()
        for field in fields {
            if field.name.isEmpty {
                problems.append("'\(name)': a field has no name (give it `name:`)")
            } else if !seen.insert(field.name).inserted && field.name != "unused" {
                problems.append("'\(name)': field '\(field.name)' appears twice")
            }
            if field.sinceVersion > versionID {
                problems.append("'\(name)': field '\(field.name)' arrives in version \(field.sinceVersion) > version_id \(versionID)")
            }
            if let nested = field.nested { problems += nested.problems() }
        }
        for subsection in subsections {
            let subsectionName = subsection.description.name
            if !subsectionName.hasPrefix(name + "/") {
                problems.append("'\(name)': subsection '\(subsectionName)' must be named '\(name)/…'")
            }
            problems += subsection.description.problems()
        }
        return problems
    }

    /// Stored properties of `State` the description carries or names in `notMigrated`.
    public var coveredProperties: Set<String> {
        var covered = Set(notMigrated)
        for field in fields { if let root = field.rootProperty { covered.insert(root) } }
        for subsection in subsections { covered.formUnion(subsection.description.coveredProperties) }
        return covered
    }

    /// Stored properties of `state` that no field carries: state QEMU would silently drop.
    public func uncoveredProperties(of state: State) -> [String] {
        let covered = coveredProperties
        return Mirror(reflecting: state).children.compactMap { $0.label }.filter { !covered.contains($0) }
    }

    // MARK: -dump-vmstate (vmstate_dump / dump_vmstate_vmsd)

    /// `omitted` names subsections to leave out (a machine type on which they can never be
    /// `needed`); nested descriptions are dumped whole.
    public func dump(omittingSubsections omitted: Set<String> = []) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("name", .string(name)), ("version_id", .int(Int64(versionID))),
            ("minimum_version_id", .int(Int64(minimumVersionID))),
        ]
        // Like QEMU, a description without fields or subsections has no such key at all.
        if !fields.isEmpty {
            members.append(
                (
                    "Fields",
                    .array(
                        fields.map { field in
                            var entry: [(String, JSONValue)] = [
                                ("field", .string(field.name)), ("version_id", .int(Int64(field.sinceVersion))),
                                ("field_exists", .bool(field.exists != nil)), ("size", .int(Int64(field.size))),
                            ]
                            if let nested = field.nested { entry.append(("Description", nested.dump())) }
                            return .object(entry)
                        })
                ))
        }
        let dumped = subsections.filter { !omitted.contains($0.description.name) }
        if !dumped.isEmpty {
            members.append(("Subsections", .array(dumped.map { $0.description.dump() })))
        }
        return .object(members)
    }
}

/// Optional state in its own named record, sent only when `needed` (QEMU's subsections).
/// A destination that lacks it refuses the stream; one that gets none keeps its defaults.
public struct VMStateSubsection<State>: Sendable {
    public let description: VMStateDescription<State>
    public let needed: @Sendable (State) -> Bool

    public init(_ description: VMStateDescription<State>, needed: @escaping @Sendable (State) -> Bool) {
        self.description = description
        self.needed = needed
    }
}
