// Every machine type a release knows, with alias → canonical resolution. Guests,
// snapshots and streams only ever carry canonical names (SPEC §1).

public struct MachineRegistry: Sendable {
    public let machineTypes: [MachineType]

    /// Refuses the whole set if any type is unsound: a device with undescribed state,
    /// a bad description, a compat property naming a missing property, a name clash.
    public init(_ machineTypes: [MachineType]) throws {
        var names = Set<String>()
        for type in machineTypes {
            if let problem = type.problems().first { throw problem }
            guard names.insert(type.name).inserted else { throw MachineError.duplicateMachineType(type.name) }
        }
        for type in machineTypes {
            guard let alias = type.alias else { continue }
            // An alias may not shadow a canonical name, nor stand for two families.
            let families = Set(machineTypes.filter { $0.alias == alias }.map(\.family))
            guard !names.contains(alias), families.count == 1 else {
                throw MachineError.aliasConflict(alias: alias, machineType: type.name)
            }
        }
        self.machineTypes = machineTypes
    }

    /// A canonical name or an alias; an alias yields the newest versioned type carrying it.
    public func resolve(_ name: String) throws -> MachineType {
        if let type = machineTypes.first(where: { $0.name == name }) { return type }
        let aliased = machineTypes.filter { $0.alias == name }
        if let newest = aliased.max(by: { ($0.version ?? MachineVersion(0, 0)) < ($1.version ?? MachineVersion(0, 0)) }) {
            return newest
        }
        throw MachineError.unknownMachineType(name, known: machineTypes.map(\.name).sorted())
    }

    public func canonicalName(_ name: String) throws -> String { try resolve(name).name }

    /// No machine types: what the panel and the CLI run with until a board module
    /// (RISCV) hands them its registry.
    public static let empty = MachineRegistry(unchecked: [])

    private init(unchecked machineTypes: [MachineType]) { self.machineTypes = machineTypes }
}
