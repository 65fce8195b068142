// Typed device properties and QEMU's compat properties. A machine version keeps
// its guest ABI by switching newer features off through {driver, property, value}
// entries (QEMU's GlobalProperty in hw_compat_X_Y arrays).

public enum PropertyValue: Equatable, Sendable, CustomStringConvertible {
    case bool(Bool)
    case uint(UInt64)
    case string(String)

    public var description: String {
        switch self {
        case .bool(let b): return b ? "on" : "off"
        case .uint(let u): return String(u)
        case .string(let s): return s
        }
    }

    /// Parses `text` as a value of the same kind as `self` (QEMU's property parsers:
    /// on/off/true/false/yes/no for bools, decimal or 0x-hex for numbers).
    func parsing(_ text: String) -> PropertyValue? {
        switch self {
        case .bool:
            switch text.lowercased() {
            case "on", "true", "yes": return .bool(true)
            case "off", "false", "no": return .bool(false)
            default: return nil
            }
        case .uint:
            let lower = text.lowercased()
            let parsed = lower.hasPrefix("0x") ? UInt64(lower.dropFirst(2), radix: 16) : UInt64(lower)
            return parsed.map(PropertyValue.uint)
        case .string:
            return .string(text)
        }
    }
}

/// A property a device type offers, with its default (the newest machine's behaviour).
public struct PropertyDefinition: Sendable, Equatable {
    public let name: String
    public let defaultValue: PropertyValue
    public let description: String

    public init(_ name: String, default defaultValue: PropertyValue, description: String = "") {
        self.name = name
        self.defaultValue = defaultValue
        self.description = description
    }

    public static func bool(_ name: String, default value: Bool, description: String = "") -> Self {
        Self(name, default: .bool(value), description: description)
    }
    public static func uint(_ name: String, default value: UInt64, description: String = "") -> Self {
        Self(name, default: .uint(value), description: description)
    }
    public static func string(_ name: String, default value: String, description: String = "") -> Self {
        Self(name, default: .string(value), description: description)
    }
}

/// One compat property: on machines that carry it, `driver`'s `property` is `value`.
public struct CompatProperty: Sendable, Hashable, CustomStringConvertible {
    public let driver: String
    public let property: String
    public let value: String

    public init(driver: String, property: String, value: String) {
        self.driver = driver
        self.property = property
        self.value = value
    }

    public var description: String { "\(driver).\(property)=\(value)" }
}

/// The resolved properties of one device on one machine.
public struct DeviceProperties: Sendable, Equatable {
    public let driver: String
    public let values: [String: PropertyValue]

    /// Defaults, then every compat property for `driver` in order (later entries, which
    /// come from older machine versions, win), then per-device overrides.
    public static func resolve(
        driver: String, definitions: [PropertyDefinition], compat: [CompatProperty],
        overrides: [String: String] = [:]
    ) throws -> DeviceProperties {
        var values: [String: PropertyValue] = [:]
        for definition in definitions { values[definition.name] = definition.defaultValue }
        func apply(_ property: String, _ text: String) throws {
            guard let current = values[property] else {
                throw MachineError.unknownProperty(driver: driver, property: property)
            }
            guard let parsed = current.parsing(text) else {
                throw MachineError.invalidPropertyValue(driver: driver, property: property, value: text)
            }
            values[property] = parsed
        }
        for entry in compat where entry.driver == driver { try apply(entry.property, entry.value) }
        for (property, text) in overrides.sorted(by: { $0.key < $1.key }) { try apply(property, text) }
        return DeviceProperties(driver: driver, values: values)
    }

    public subscript(name: String) -> PropertyValue? { values[name] }

    /// The property as a bool; a name the device does not define is a programming error.
    public func bool(_ name: String) -> Bool {
        guard case .bool(let b)? = values[name] else { preconditionFailure("\(driver) has no bool property '\(name)'") }
        return b
    }

    public func uint(_ name: String) -> UInt64 {
        guard case .uint(let u)? = values[name] else { preconditionFailure("\(driver) has no uint property '\(name)'") }
        return u
    }

    public func string(_ name: String) -> String {
        guard case .string(let s)? = values[name] else { preconditionFailure("\(driver) has no string property '\(name)'") }
        return s
    }
}
