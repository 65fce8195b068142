// Errors of machine types, registries and device registration.
import VMState

public enum MachineError: Error, CustomStringConvertible, Equatable, Sendable {
    case unknownMachineType(String, known: [String])
    case duplicateMachineType(String)
    case aliasConflict(alias: String, machineType: String)
    case invalidMachineName(String, reason: String)
    case invalidDevice(machineType: String, problems: [String])
    case duplicateDeviceID(machineType: String, id: String)
    case statefulWithoutDescription(driver: String, stateType: String)
    case unmigratedState(driver: String, properties: [String])
    case unknownDevice(machineType: String, id: String)
    case deviceDriverMismatch(id: String, expected: String, actual: String)
    case deviceAlreadyRegistered(id: String)
    case devicesMissing(machineType: String, ids: [String])
    case notMigratable(machineType: String, blockers: [MigrationBlocker])
    case unknownProperty(driver: String, property: String)
    case invalidPropertyValue(driver: String, property: String, value: String)

    public var description: String {
        switch self {
        case .unknownMachineType(let name, let known):
            return "unsupported machine type '\(name)'; known: \(known.joined(separator: ", "))"
        case .duplicateMachineType(let name):
            return "machine type '\(name)' is defined twice"
        case .aliasConflict(let alias, let type):
            return "alias '\(alias)' of '\(type)' collides with another machine type or alias"
        case .invalidMachineName(let name, let reason):
            return "machine type name '\(name)': \(reason)"
        case .invalidDevice(let type, let problems):
            return "machine type '\(type)' has invalid devices: \(problems.joined(separator: "; "))"
        case .duplicateDeviceID(let type, let id):
            return "machine type '\(type)' lists device '\(id)' twice"
        case .statefulWithoutDescription(let driver, let stateType):
            return "device '\(driver)' holds state (\(stateType)) but has no VMState description; it cannot be registered"
        case .unmigratedState(let driver, let properties):
            return
                "device '\(driver)': state \(properties.map { "'\($0)'" }.joined(separator: ", ")) is in no VMState field (list it in notMigrated if it is derived)"
        case .unknownDevice(let type, let id):
            return "machine type '\(type)' has no device '\(id)'"
        case .deviceDriverMismatch(let id, let expected, let actual):
            return "device '\(id)' must be a '\(expected)', got a '\(actual)'"
        case .deviceAlreadyRegistered(let id):
            return "device '\(id)' is already registered"
        case .devicesMissing(let type, let ids):
            return "machine type '\(type)' is missing devices: \(ids.joined(separator: ", "))"
        case .notMigratable(let type, let blockers):
            return "machine type '\(type)' cannot be snapshotted or migrated: "
                + blockers.map(\.description).joined(separator: "; ")
        case .unknownProperty(let driver, let property):
            return "can't apply global \(driver).\(property): Property '\(property)' not found"
        case .invalidPropertyValue(let driver, let property, let value):
            return "can't apply global \(driver).\(property)=\(value): invalid value"
        }
    }
}
