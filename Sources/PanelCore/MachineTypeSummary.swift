import EmulatorCore
import Foundation
import QEMUBackend
import VMState

/// One reason a machine type cannot move its state: the device and QEMU's or the board's words.
public struct MachineTypeBlocker: Encodable, Sendable, Equatable {
    /// The device's id on the machine, when the reason names one.
    var deviceId: String?
    var driver: String?
    var reason: String
}

/// A machine type as `GET /machine-types` lists it and `emupanel machines --json` prints it.
/// Both go through `MachineTypeSummary.list`, so the two outputs cannot drift apart. A name is
/// unique within its backend, and for QEMU within its binary (`backend`, `binary`, `name` key it).
public struct MachineTypeSummary: Encodable, Sendable {
    public var name: String
    public var alias: String?
    public var description: String
    /// `builtin` or `qemu`.
    public var backend: Backend
    /// The guest architecture (`riscv64`, `x86_64`).
    public var arch: String
    /// QEMU types: the binary that has it (`qemu-system-x86_64`) and its version.
    public var binary: String?
    public var qemuVersion: String?
    public var tier: String
    public var tierReason: String
    /// Why the machine cannot move its state (tier none), device by device.
    public var blockers: [MachineTypeBlocker]
    public var deprecated: Bool
    /// The emupanel release that brought a built-in type; the QEMU release of a QEMU type.
    public var release: String
    public var defaultRAMBytes: UInt64

    init(_ type: MachineType, deprecation: String?) {
        name = type.name
        alias = type.alias
        description = type.description
        backend = .builtin
        arch = "riscv64"
        tier = type.tier.rawValue
        tierReason = type.tierReason
        blockers = type.blockers.map { MachineTypeBlocker(deviceId: $0.deviceID, driver: $0.driver, reason: $0.reason) }
        deprecated = deprecation != nil
        release = type.release
        defaultRAMBytes = type.defaultRAMSize
    }

    /// A QEMU machine type as discovery found it in `binary`.
    init(_ type: QEMUMachineType, of binary: QEMUBinary) {
        name = type.name
        alias = type.alias
        description =
            "\(binary.name) \(binary.version)" + (type.isDefault ? ", its default machine" : "")
            + (type.probeError.map { "; does not start with its default devices: \($0)" } ?? "")
        backend = .qemu
        arch = binary.arch
        self.binary = binary.name
        qemuVersion = binary.version.description
        tier = type.tier.rawValue
        tierReason = type.tierReason
        blockers = type.blockers.map { MachineTypeBlocker(deviceId: $0.device, driver: nil, reason: $0.reason) }
        deprecated = type.deprecated
        release = binary.version.release
        // QEMU's `-m` default; query-machines does not say more.
        defaultRAMBytes = 128 << 20
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
