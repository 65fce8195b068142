// One entry of a machine type's device list: which device type sits on the board
// under which id. It records the type's migration declaration, so the machine
// type's tier can be computed without building a machine.
import VMState

public struct DeviceSpec: Sendable {
    /// Unique on the board ("uart0"); also the device tree node's label.
    public let id: String
    /// The device's type, so a board can build it and ask it about its subsections.
    public let deviceType: any Device.Type
    public let driver: String
    public let migration: MigrationDeclaration
    public let propertyDefinitions: [PropertyDefinition]
    /// Per-board property settings (QEMU's -device …,prop=value), applied after compat.
    public let properties: [String: String]
    let stateTypeName: String
    let stateTypeID: ObjectIdentifier
    let problems: [String]

    public init<D: Device>(_ type: D.Type, id: String, properties: [String: String] = [:]) {
        self.id = id
        deviceType = type
        driver = D.driver
        migration = D.erasedMigration
        propertyDefinitions = D.properties
        self.properties = properties
        stateTypeName = String(describing: D.State.self)
        stateTypeID = ObjectIdentifier(D.State.self)
        problems = D.registrationProblems()
    }

    /// The reason this device blocks migration, if it does.
    public var blockerReason: String? {
        if case .unmigratable(let reason) = migration { return reason }
        return nil
    }

    /// The description its state travels in (nil when stateless or unmigratable).
    public var vmstate: AnyVMStateDescription? {
        if case .vmstate(let description) = migration { return description }
        return nil
    }
}

/// A device that makes its machine type unmigratable, and why.
public struct MigrationBlocker: Sendable, Equatable, CustomStringConvertible {
    public let deviceID: String
    public let driver: String
    public let reason: String

    public var description: String { "device '\(deviceID)' (\(driver)): \(reason)" }
}
