// A QEMU machine type as discovery found it, with its migration tier computed from
// what QEMU reports — never typed (SPEC §8 "QEMU tiers"):
// - none: starting it with its default devices (or the devices a guest is configured
//   with) shows a migration blocker; each one is named with QEMU's reason;
// - versioned: the name carries the release it was frozen at (`pc-q35-7.2`, `virt-7.2`,
//   `pc-q35-4.0.1`); QEMU promises forward migration to the same or a newer QEMU;
// - unversioned: everything else (`virt` on riscv64, `sifive_u`); same QEMU version only.
import EmulatorCore
import Foundation

/// One reason QEMU gives for refusing migration (`query-migrate` → `blocked-reasons`, or a
/// refused `migrate`), with the device it names when it names one.
public struct QEMUMigrationBlocker: Sendable, Codable, Equatable, CustomStringConvertible {
    /// QEMU's device id or path ("cpu", "0000:00:01.0/nvme"), when the reason names one.
    public var device: String?
    /// QEMU's words.
    public var reason: String

    public init(device: String?, reason: String) {
        self.device = device
        self.reason = reason
    }

    /// Reads QEMU's text: "non-migratable device: X" (blocked-reasons) and "State blocked by
    /// non-migratable device 'X'" (a refused migrate) name the device; other blockers (a
    /// mounted 9p export, vhost without migration support) are kept as QEMU wrote them.
    public init(qemuReason text: String) {
        let listed = "non-migratable device: "
        let refused = "State blocked by non-migratable device '"
        if text.hasPrefix(listed) {
            self.init(device: String(text.dropFirst(listed.count)), reason: text)
        } else if text.hasPrefix(refused), text.hasSuffix("'") {
            self.init(device: String(text.dropFirst(refused.count).dropLast()), reason: text)
        } else {
            self.init(device: nil, reason: text)
        }
    }

    public var description: String { reason }
}

public struct QEMUMachineType: Sendable, Codable, Equatable {
    public var name: String
    /// The short name QEMU resolves to this type (`q35` → `pc-q35-7.2`, `pc`, `mega2560`).
    public var alias: String?
    /// QEMU's default machine for the binary (used when no `-machine` is given).
    public var isDefault: Bool
    /// `query-machines` says QEMU deprecated it.
    public var deprecated: Bool
    public var blockers: [QEMUMigrationBlocker]
    /// Why the blocker probe could not run (the type needs a kernel, a RAM size, a device
    /// QEMU lacks…); its tier then rests on the name alone and says so.
    public var probeError: String?

    public init(
        name: String, alias: String? = nil, isDefault: Bool = false, deprecated: Bool = false,
        blockers: [QEMUMigrationBlocker] = [], probeError: String? = nil
    ) {
        self.name = name
        self.alias = alias
        self.isDefault = isDefault
        self.deprecated = deprecated
        self.blockers = blockers
        self.probeError = probeError
    }

    /// The release in the name: `pc-q35-7.2` → 7.2, `pc-q35-4.0.1` → 4.0 (QEMU's point-release
    /// types keep their release's promise); nil for an unversioned name.
    public var version: MachineVersion? { Self.version(in: name) }

    public static func version(in name: String) -> MachineVersion? {
        guard let dash = name.lastIndex(of: "-") else { return nil }
        let parts = name[name.index(after: dash)...].split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3,
            parts.allSatisfy({ !$0.isEmpty && $0.count <= 4 && $0.allSatisfy { $0.isASCII && $0.isNumber } }),
            let major = Int(parts[0]), let minor = Int(parts[1])
        else { return nil }
        return MachineVersion(major, minor)
    }

    public var tier: MigrationTier {
        if !blockers.isEmpty { return .none }
        return version == nil ? .unversioned : .versioned
    }

    /// One line on why the type has its tier.
    public var tierReason: String {
        var reason: String
        switch tier {
        case .none:
            reason =
                "QEMU refuses to migrate it: "
                + blockers.map { blocker in blocker.device.map { "\($0) (\(blocker.reason))" } ?? blocker.reason }
                .joined(separator: "; ")
        case .versioned:
            reason =
                "version \(version.map(String.init(describing:)) ?? "") in the name: QEMU keeps its guest ABI and "
                + "migration format, so it migrates to the same or a newer QEMU"
            if let alias { reason += " (alias \(alias))" }
        case .unversioned:
            reason =
                "no version in the name: migrates between the same QEMU version only; across versions it "
                + "works or fails with QEMU's error before the destination runs"
        }
        if let probeError { reason += "; blockers unknown, it does not start with its default devices: \(probeError)" }
        return reason
    }
}
