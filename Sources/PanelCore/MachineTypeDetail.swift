import EmulatorCore
import Foundation

/// `GET /machine-types/{name}`: everything that decides whether a guest of this type moves.
public struct MachineTypeDetail: Encodable, Sendable {
    var name: String
    /// What the client asked for (the alias, when it asked by alias).
    var requested: String
    var canonical: String
    var alias: String?
    var family: String
    var version: String?
    var description: String
    var tier: String
    var tierReason: String
    var deprecated: Bool
    /// When the age rule made (or will make) the type deprecated.
    var deprecatedSince: Date?
    var deprecationReason: String?
    var release: String
    var releaseDate: Date?
    var defaultRAMBytes: UInt64
    var devices: [DeviceInfo]
    var blockers: [Blocker]
    var compatProperties: [CompatEntry]

    struct DeviceInfo: Encodable, Sendable {
        var id: String
        var driver: String
        /// `vmstate`, `stateless` or `unmigratable`.
        var migration: String
        var state: StateInfo?
        var blocker: String?
        /// Resolved values, compat properties applied (QEMU's `-device driver,help` on this machine).
        var properties: [String: String]
    }

    struct StateInfo: Encodable, Sendable {
        var name: String
        var versionId: Int
        var minimumVersionId: Int
    }

    struct Blocker: Encodable, Sendable { var deviceId: String; var driver: String; var reason: String }
    struct CompatEntry: Encodable, Sendable { var driver: String; var property: String; var value: String }

    init(_ type: MachineType, requested: String, policy: DeprecationPolicy, now: Date = Date()) {
        let deprecation = type.deprecation(asOf: now, policy: policy)
        name = type.name
        self.requested = requested
        canonical = type.name
        alias = type.alias
        family = type.family
        version = type.version?.description
        description = type.description
        tier = type.tier.rawValue
        tierReason = type.tierReason
        deprecated = deprecation != nil
        deprecatedSince = type.deprecationNote == nil ? type.deprecationDate(policy: policy).flatMap { $0 <= now ? $0 : nil } : nil
        deprecationReason = deprecation
        release = type.release
        releaseDate = type.releaseDate
        defaultRAMBytes = type.defaultRAMSize
        devices = type.devices.map { spec in
            let migration: String
            var state: StateInfo?
            switch spec.migration {
            case .vmstate(let description):
                migration = "vmstate"
                state = StateInfo(
                    name: description.name, versionId: description.versionID,
                    minimumVersionId: description.minimumVersionID)
            case .stateless: migration = "stateless"
            case .unmigratable: migration = "unmigratable"
            }
            // A registry refuses types whose properties do not resolve, so this cannot fail here.
            let properties = (try? type.properties(of: spec.id))?.values.mapValues(\.description) ?? [:]
            return DeviceInfo(
                id: spec.id, driver: spec.driver, migration: migration, state: state,
                blocker: spec.blockerReason, properties: properties)
        }
        blockers = type.blockers.map { Blocker(deviceId: $0.deviceID, driver: $0.driver, reason: $0.reason) }
        compatProperties = type.compatProperties.map { CompatEntry(driver: $0.driver, property: $0.property, value: $0.value) }
    }
}
