// A stream's RAM precedes its devices, so a version problem in a device section is
// found only after guest RAM was written. For a snapshot file the VMDESCRIPTION at
// its end already lists every device section with its version and the subsections
// sent, so a restore can be refused before a single byte is loaded.

public enum QEVMPreflight {
    /// Finds the VMDESCRIPTION JSON in the last bytes of a stream, the way
    /// analyze-migration.py does: the first '{' after the last NUL, preceded by
    /// QEMU_VM_VMDESCRIPTION and its be32 length. Nil when there is none.
    public static func vmDescription(inTail tail: [UInt8]) -> JSONValue? {
        locateVMDescription(inTail: tail)?.json
    }

    /// The VMDESCRIPTION with where its JSON starts in `tail` and how long it is, so a
    /// reader walking the stream can check it reaches the same bytes.
    public static func locateVMDescription(inTail tail: [UInt8]) -> (json: JSONValue, start: Int, length: Int)? {
        guard let nul = tail.lastIndex(of: 0),
            let brace = tail[nul...].firstIndex(of: UInt8(ascii: "{")), brace >= 5,
            tail[brace - 5] == QEMUVMSectionType.vmDescription.rawValue
        else { return nil }
        let length = tail[(brace - 4)..<brace].reduce(0) { $0 << 8 | Int($1) }
        guard brace + length <= tail.count,
            let text = String(validating: tail[brace..<(brace + length)], as: UTF8.self),
            let json = try? JSONValue.parse(text)
        else { return nil }
        return (json, brace, length)
    }

    /// Every problem loading a stream with this VMDESCRIPTION would hit in its device
    /// sections: unknown sections, versions out of range, unknown subsections.
    public static func problems(vmDescription: JSONValue, entries: [SaveStateEntry]) -> [VMStateError] {
        guard let devices = vmDescription["devices"]?.arrayValue else {
            return [.expectedVMDescription(got: 0)]
        }
        var problems: [VMStateError] = []
        for device in devices {
            let name = device["name"]?.stringValue ?? ""
            let instanceID = UInt32(clamping: device["instance_id"]?.intValue ?? -1)
            guard let entry = entries.first(where: { $0.idstr == name && $0.instanceID == instanceID }) else {
                problems.append(.unknownSection(name: name, instanceID: instanceID))
                continue
            }
            problems += check(device, against: entry.description)
        }
        return problems
    }

    private static func check(_ sent: JSONValue, against local: AnyVMStateDescription) -> [VMStateError] {
        let version = Int(sent["version"]?.intValue ?? -1)
        if version > local.versionID {
            return [.versionTooNew(device: local.name, incoming: version, local: local.versionID)]
        }
        if version < local.minimumVersionID {
            return [.versionTooOld(device: local.name, incoming: version, minimum: local.minimumVersionID)]
        }
        var problems: [VMStateError] = []
        for subsection in sent["subsections"]?.arrayValue ?? [] {
            let name = subsection["vmsd_name"]?.stringValue ?? ""
            guard let known = local.subsection(named: name) else {
                problems.append(.unknownSubsection(name: name, parent: local.name, version: version))
                continue
            }
            problems += check(subsection, against: known)
        }
        return problems
    }
}
