import EmulatorCore
import Foundation

/// What the panel's services need to know, read from the configuration file's top-level keys
/// (the HTTP side adds where to listen and its own limits; PanelHTTP/PanelConfiguration.swift).
public struct PanelSettings: Sendable, Codable, Equatable {
    public var dataDir: String = "data"
    /// Where the project's test guests (`*.elf`) are; they are offered as images.
    public var guestsDir: String = "guests"
    public var peers: [Peer] = []
    /// Idle browser sessions expire after this long.
    public var sessionHours: Double = 12
    /// On a first start (no guests yet) create a stopped guest named "demo" to try things on.
    public var demoGuest: Bool = false
    /// Versioned machine types older than this are shown as deprecated (QEMU: 3 years).
    public var deprecationYears: Double = 3
    /// Frozen releases' vmstate dumps (`<release>/<machine>.vmstate.json`), read by `GET /compatibility`.
    public var fixturesDir: String = "Tests/Fixtures/releases"
    /// Quotas this host enforces (all unlimited by default).
    public var limits = Limits()
    /// The QEMU backend: which qemu-system-* binaries, and where discovery keeps what it found.
    public var qemu = QEMUSettings()

    /// SPEC §8 "Backends": QEMU guests beside the built-in core's.
    public struct QEMUSettings: Sendable, Codable, Equatable {
        /// Off: no discovery, no QEMU machine types, no QEMU guests.
        public var enabled = true
        /// Only these binaries, by name (`qemu-system-riscv64`); nil: every qemu-system-* found.
        public var binaries: [String]?
        /// Where probes and `-dump-vmstate` files are cached; nil: `<dataDir>/qemu`.
        public var cacheDir: String?
        /// A PATH-style list of directories to look in; nil: the panel's own PATH.
        public var searchPath: String?

        public init(enabled: Bool = true, binaries: [String]? = nil, cacheDir: String? = nil, searchPath: String? = nil) {
            self.enabled = enabled
            self.binaries = binaries
            self.cacheDir = cacheDir
            self.searchPath = searchPath
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            enabled = try container.decodeIfPresent(Bool.self, forKey: .enabled) ?? true
            binaries = try container.decodeIfPresent([String].self, forKey: .binaries)
            cacheDir = try container.decodeIfPresent(String.self, forKey: .cacheDir)
            searchPath = try container.decodeIfPresent(String.self, forKey: .searchPath)
        }
    }

    /// How much one host takes on (SPEC §8 "Limits"): nil is no limit.
    public struct Limits: Sendable, Codable, Equatable {
        public var maxGuests: Int?
        /// The sum of every guest's memory (migrated-away guests do not count).
        public var maxTotalMemoryMiB: Int?
        /// The sum of every snapshot's size.
        public var maxSnapshotBytes: Int64?
        public init(maxGuests: Int? = nil, maxTotalMemoryMiB: Int? = nil, maxSnapshotBytes: Int64? = nil) {
            self.maxGuests = maxGuests
            self.maxTotalMemoryMiB = maxTotalMemoryMiB
            self.maxSnapshotBytes = maxSnapshotBytes
        }
    }

    /// Another emupanel host this one may migrate guests to.
    public struct Peer: Sendable, Codable, Equatable {
        public var name: String
        public var url: String
        public var token: String
        public init(name: String, url: String, token: String) {
            self.name = name
            self.url = url
            self.token = token
        }
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = PanelSettings()
        dataDir = try container.decodeIfPresent(String.self, forKey: .dataDir) ?? defaults.dataDir
        guestsDir = try container.decodeIfPresent(String.self, forKey: .guestsDir) ?? defaults.guestsDir
        peers = try container.decodeIfPresent([Peer].self, forKey: .peers) ?? []
        sessionHours = try container.decodeIfPresent(Double.self, forKey: .sessionHours) ?? defaults.sessionHours
        demoGuest = try container.decodeIfPresent(Bool.self, forKey: .demoGuest) ?? defaults.demoGuest
        deprecationYears = try container.decodeIfPresent(Double.self, forKey: .deprecationYears) ?? defaults.deprecationYears
        fixturesDir = try container.decodeIfPresent(String.self, forKey: .fixturesDir) ?? defaults.fixturesDir
        limits = try container.decodeIfPresent(Limits.self, forKey: .limits) ?? defaults.limits
        qemu = try container.decodeIfPresent(QEMUSettings.self, forKey: .qemu) ?? defaults.qemu
    }

    public func validate() throws {
        guard sessionHours > 0, sessionHours <= 24 * 365 else { throw ConfigurationError("sessionHours must be in (0, 8760]") }
        guard deprecationYears >= 1, deprecationYears <= 100, deprecationYears.rounded() == deprecationYears else {
            throw ConfigurationError("deprecationYears must be a whole number of years in 1…100")
        }
        for (name, value) in [
            ("maxGuests", limits.maxGuests.map(Int64.init)), ("maxTotalMemoryMiB", limits.maxTotalMemoryMiB.map(Int64.init)),
            ("maxSnapshotBytes", limits.maxSnapshotBytes),
        ] {
            if let value, value < 0 { throw ConfigurationError("limits.\(name) must not be negative") }
        }
        for name in qemu.binaries ?? [] where !name.hasPrefix("qemu-system-") || name.contains("/") {
            throw ConfigurationError("qemu.binaries names qemu-system-* binaries by name, not '\(name)'")
        }
        var names = Set<String>()
        for peer in peers {
            guard !peer.name.isEmpty, names.insert(peer.name).inserted else {
                throw ConfigurationError("peer names must be unique and non-empty ('\(peer.name)')")
            }
            guard let url = URL(string: peer.url), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw ConfigurationError("peer '\(peer.name)' has an invalid url '\(peer.url)'")
            }
            guard !peer.token.isEmpty, PeerClient.isTokenText(peer.token) else {
                throw ConfigurationError("peer '\(peer.name)' needs a token of printable ASCII without spaces")
            }
        }
    }

    /// The deprecation rule of `deprecationYears` (validated to whole years).
    public var deprecationPolicy: DeprecationPolicy { DeprecationPolicy(maximumAgeInYears: Int(deprecationYears)) }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
