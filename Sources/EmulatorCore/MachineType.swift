// A machine type: a named board with its devices, compat properties and RAM
// default. Its migration tier is computed from that definition (SPEC §1), never
// typed by hand: any unmigratable device makes it `none`, a version in the name
// makes it `versioned`, otherwise it is `unversioned`.
import Foundation
import VMState

public enum MigrationTier: String, Sendable, CaseIterable {
    /// virt-X.Y: the guest ABI and wire layout never change; migrates forward and backward.
    case versioned
    /// sandbox: works within a release; across releases it works or fails before applying state.
    case unversioned
    /// A device holds host state: snapshot and migrate are refused up front.
    case none
}

/// The X.Y of a versioned machine type name.
public struct MachineVersion: Comparable, Hashable, Sendable, CustomStringConvertible {
    public let major: Int
    public let minor: Int

    public init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// "1.0" → 1.0; anything else → nil.
    public init?(_ text: Substring) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
            let major = Int(parts[0]), let minor = Int(parts[1])
        else { return nil }
        self.init(major, minor)
    }

    public static func < (a: Self, b: Self) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
    public var description: String { "\(major).\(minor)" }
}

/// How old a versioned type may get before it is shown as deprecated.
public struct DeprecationPolicy: Sendable {
    public var maximumAgeInYears: Int
    public init(maximumAgeInYears: Int) { self.maximumAgeInYears = maximumAgeInYears }
    /// QEMU deprecates versioned machine types after three years (docs/about/deprecated.rst).
    public static let qemu = DeprecationPolicy(maximumAgeInYears: 3)
}

public struct MachineType: Sendable {
    /// The canonical name: "virt-1.0", "sandbox".
    public let name: String
    /// A short name that resolves to the newest versioned type ("virt"); only on that type.
    public let alias: String?
    public let description: String
    /// The emupanel release this type first appeared in.
    public let release: String
    /// When that release came out; the deprecation clock starts here.
    public let releaseDate: Date?
    /// A deprecation decided by hand (beyond the age rule), with its reason.
    public let deprecationNote: String?
    public let defaultRAMSize: UInt64
    public let devices: [DeviceSpec]
    /// Cumulative, newest release first, as QEMU's hw_compat_X_Y arrays combine.
    public let compatProperties: [CompatProperty]

    public init(
        name: String, alias: String? = nil, description: String, release: String, releaseDate: Date? = nil,
        deprecationNote: String? = nil, defaultRAMSize: UInt64, devices: [DeviceSpec],
        compatProperties: [CompatProperty] = []
    ) {
        self.name = name
        self.alias = alias
        self.description = description
        self.release = release
        self.releaseDate = releaseDate
        self.deprecationNote = deprecationNote
        self.defaultRAMSize = defaultRAMSize
        self.devices = devices
        self.compatProperties = compatProperties
    }

    /// The version in the name ("virt-1.0" → 1.0), if any.
    public var version: MachineVersion? {
        guard let dash = name.lastIndex(of: "-") else { return nil }
        return MachineVersion(name[name.index(after: dash)...])
    }

    /// The name without its version ("virt-1.0" → "virt").
    public var family: String {
        guard version != nil, let dash = name.lastIndex(of: "-") else { return name }
        return String(name[..<dash])
    }

    public var blockers: [MigrationBlocker] {
        devices.compactMap { spec in
            spec.blockerReason.map { MigrationBlocker(deviceID: spec.id, driver: spec.driver, reason: $0) }
        }
    }

    public var tier: MigrationTier {
        if !blockers.isEmpty { return .none }
        return version == nil ? .unversioned : .versioned
    }

    /// One line on why the type has its tier, for `machines` and the API.
    public var tierReason: String {
        switch tier {
        case .none:
            return "cannot be snapshotted or migrated: " + blockers.map(\.description).joined(separator: "; ")
        case .versioned:
            return "version \(version.map(String.init(describing:)) ?? "") in the name: its guest ABI and wire layout "
                + "never change, so it migrates forward and backward between releases that know it"
        case .unversioned:
            return "no version in the name: migrates within one release; across releases it works or fails "
                + "before any state is applied"
        }
    }

    /// When the age rule makes this type deprecated (release date + the policy's years);
    /// nil for unversioned types and types without a release date.
    public func deprecationDate(policy: DeprecationPolicy = .qemu) -> Date? {
        guard version != nil, let releaseDate else { return nil }
        return Calendar(identifier: .gregorian).date(byAdding: .year, value: policy.maximumAgeInYears, to: releaseDate)
    }

    /// Why the type is shown as deprecated at `date`, or nil. Only versioned types age out.
    public func deprecation(asOf date: Date, policy: DeprecationPolicy = .qemu) -> String? {
        if let deprecationNote { return deprecationNote }
        guard version != nil, let releaseDate,
            let limit = Calendar(identifier: .gregorian).date(
                byAdding: .year, value: policy.maximumAgeInYears,
                to: releaseDate),
            date >= limit
        else { return nil }
        return "older than \(policy.maximumAgeInYears) years (released with \(release))"
    }

    public func isDeprecated(asOf date: Date, policy: DeprecationPolicy = .qemu) -> Bool {
        deprecation(asOf: date, policy: policy) != nil
    }

    public func device(_ id: String) -> DeviceSpec? { devices.first { $0.id == id } }

    /// The resolved properties of device `id` on this machine type.
    public func properties(of id: String) throws -> DeviceProperties {
        guard let spec = device(id) else { throw MachineError.unknownDevice(machineType: name, id: id) }
        return try DeviceProperties.resolve(
            driver: spec.driver, definitions: spec.propertyDefinitions,
            compat: compatProperties, overrides: spec.properties)
    }

    /// Every problem that keeps this type out of a registry; empty when it is sound.
    public func problems() -> [MachineError] {
        var errors: [MachineError] = []
        if name.isEmpty || name.utf8.count > 64 || name.contains(where: { $0.isWhitespace }) {
            errors.append(.invalidMachineName(name, reason: "must be 1–64 characters without blanks"))
        }
        var ids = Set<String>()
        var deviceProblems: [String] = []
        for spec in devices {
            if !ids.insert(spec.id).inserted { errors.append(.duplicateDeviceID(machineType: name, id: spec.id)) }
            deviceProblems += spec.problems
            if case .stateless = spec.migration, spec.stateTypeID != ObjectIdentifier(NoState.self) {
                errors.append(.statefulWithoutDescription(driver: spec.driver, stateType: spec.stateTypeName))
            }
            do { _ = try properties(of: spec.id) } catch let error as MachineError { errors.append(error) } catch {}
        }
        if !deviceProblems.isEmpty { errors.append(.invalidDevice(machineType: name, problems: deviceProblems)) }
        return errors
    }

    /// The machine's state descriptions as `vmstate dump` writes them (QEMU -dump-vmstate).
    public func vmstateDump() -> String {
        VMStateDump.render(
            machineType: name,
            devices: devices.compactMap { spec in
                // A subsection whose feature this machine's compat properties switch off never
                // travels on it; leaving it out keeps an old version's dump as its release froze it.
                let switchedOff = (try? properties(of: spec.id)).map { spec.deviceType.subsectionsSwitchedOff(by: $0) } ?? []
                return spec.vmstate.map { VMStateDump.Device(name: spec.driver, description: $0, omittedSubsections: switchedOff) }
            })
    }
}
