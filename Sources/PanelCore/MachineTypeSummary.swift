import EmulatorCore
import Foundation
import VMState

/// A machine type as `GET /machine-types` lists it and `emupanel machines --json` prints it.
/// Both go through `MachineTypeSummary.list`, so the two outputs cannot drift apart.
public struct MachineTypeSummary: Encodable, Sendable {
    public var name: String
    public var alias: String?
    public var description: String
    public var tier: String
    public var tierReason: String
    public var deprecated: Bool
    public var release: String
    public var defaultRAMBytes: UInt64

    init(_ type: MachineType, deprecation: String?) {
        name = type.name
        alias = type.alias
        description = type.description
        tier = type.tier.rawValue
        tierReason = type.tierReason
        deprecated = deprecation != nil
        release = type.release
        defaultRAMBytes = type.defaultRAMSize
    }

    /// The list in registry order (the board module lists families newest version first).
    public static func list(
        _ registry: MachineRegistry, policy: DeprecationPolicy = .qemu, now: Date = Date()
    )
        -> Items<MachineTypeSummary>
    {
        Items(items: registry.machineTypes.map { MachineTypeSummary($0, deprecation: $0.deprecation(asOf: now, policy: policy)) })
    }

    /// `emupanel machines`: one line per type.
    public static func table(_ list: Items<MachineTypeSummary>) -> String {
        let rows = list.items.map { [$0.name, $0.alias ?? "-", $0.tier, $0.deprecated ? "yes" : "no", $0.description] }
        return TextTable.render(header: ["NAME", "ALIAS", "TIER", "DEPRECATED", "DESCRIPTION"], rows: rows)
            .joined(separator: "\n") + "\n"
    }

    /// The list as the API encodes it (camelCase keys, sorted, ISO 8601 dates).
    public static func json(_ list: Items<MachineTypeSummary>) -> String {
        String(decoding: (try? APIEncoding.encoder.encode(list)) ?? Data(), as: UTF8.self)
    }
}
