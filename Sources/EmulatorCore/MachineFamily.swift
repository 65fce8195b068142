// Versioned machine types are built like QEMU's DEFINE_VIRT_MACHINE chain: every
// version takes the next newer version's options and adds its own compat array, so
// virt-1.0's compat properties = virt-1.1's + hw_compat_1_0.
import Foundation

public struct MachineVersionRelease: Sendable {
    public let version: MachineVersion
    /// The emupanel release the version appeared in, and when.
    public let release: String
    public let releaseDate: Date?
    /// What this version switches off relative to the next newer one (hw_compat_X_Y).
    public let compat: [CompatProperty]
    /// Devices this version added to the board (guest-visible, so never in older versions):
    /// every newer version carries them too, after the family's own devices.
    public let devicesAdded: [DeviceSpec]
    public let deprecationNote: String?

    public init(
        _ version: MachineVersion, release: String, releaseDate: Date? = nil, compat: [CompatProperty] = [],
        devicesAdded: [DeviceSpec] = [], deprecationNote: String? = nil
    ) {
        self.version = version
        self.release = release
        self.releaseDate = releaseDate
        self.compat = compat
        self.devicesAdded = devicesAdded
        self.deprecationNote = deprecationNote
    }
}

public enum MachineFamily {
    /// One machine type per version, e.g. virt-1.1 and virt-1.0. The newest carries `alias`.
    public static func versioned(
        family: String, alias: String?, description: String, defaultRAMSize: UInt64,
        devices: [DeviceSpec], versions: [MachineVersionRelease]
    ) -> [MachineType] {
        let newestFirst = versions.sorted { $0.version > $1.version }
        var compat: [CompatProperty] = []
        return newestFirst.enumerated().map { index, version in
            compat += version.compat
            let added = versions.filter { $0.version <= version.version }.sorted { $0.version < $1.version }.flatMap(\.devicesAdded)
            return MachineType(
                name: "\(family)-\(version.version)", alias: index == 0 ? alias : nil,
                description: "\(description) (version \(version.version))", release: version.release,
                releaseDate: version.releaseDate, deprecationNote: version.deprecationNote,
                defaultRAMSize: defaultRAMSize, devices: devices + added, compatProperties: compat)
        }
    }
}
