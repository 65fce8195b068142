// `emupanel vmstate dump`: a machine's state descriptions in the JSON layout of
// QEMU's `-dump-vmstate` (migration/savevm.c dump_vmstate_json_to_file), so that
// the same reasoning — and QEMU's static checker's rules — apply to emupanel.

public enum VMStateDump {
    /// One dump entry: QEMU keys each by the device's type name ("Name").
    public struct Device {
        public let name: String
        public let description: AnyVMStateDescription
        /// Subsections this machine can never send (compat properties switch their feature
        /// off), left out so the dump states this machine type's wire format.
        public let omittedSubsections: Set<String>
        public init(name: String, description: AnyVMStateDescription, omittedSubsections: Set<String> = []) {
            self.name = name
            self.description = description
            self.omittedSubsections = omittedSubsections
        }
    }

    /// `{"vmschkmachine": {"Name": …}, "<device>": {"Name", "version_id", "minimum_version_id", "Description"}}`.
    /// A device type that appears several times on the board is dumped once, as QEMU does.
    public static func json(machineType: String, devices: [Device]) -> JSONValue {
        var members: [(String, JSONValue)] = [("vmschkmachine", .object([("Name", .string(machineType))]))]
        var seen = Set<String>()
        for device in devices where seen.insert(device.name).inserted {
            let description = device.description
            members.append(
                (
                    device.name,
                    .object([
                        ("Name", .string(device.name)),
                        ("version_id", .int(Int64(description.versionID))),
                        ("minimum_version_id", .int(Int64(description.minimumVersionID))),
                        ("Description", description.dump(omittingSubsections: device.omittedSubsections)),
                    ])
                ))
        }
        return .object(members)
    }

    /// The dump as text, indented like QEMU's (two spaces), with a final newline.
    public static func render(machineType: String, devices: [Device]) -> String {
        json(machineType: machineType, devices: devices).serialized(indent: 2) + "\n"
    }
}
