import EmulatorCore
import Foundation
import HTTPServer

/// Config/emupanel.json: where to listen, where data lives, limits, token, peers.
/// Every key is optional; command-line flags override the file.
public struct PanelConfiguration: Sendable, Codable, Equatable {
    /// `HOST:PORT`; IPv6 as `[::1]:8080`.
    public var listen: String = "127.0.0.1:8080"
    public var dataDir: String = "data"
    public var publicDir: String = "Public"
    /// Where the project's test guests (`*.elf`) are; they are offered as images.
    public var guestsDir: String = "guests"
    /// Admin token; `EMUPANEL_TOKEN` wins over it, and without either one is generated.
    public var token: String?
    public var server: ServerConfiguration = ServerConfiguration()
    public var peers: [Peer] = []
    /// Idle browser sessions expire after this long.
    public var sessionHours: Double = 12
    /// On a first start (no guests yet) create a stopped U-Boot guest named "demo" to try things on.
    public var demoGuest: Bool = false
    /// Versioned machine types older than this are shown as deprecated (QEMU: 3 years).
    public var deprecationYears: Double = 3
    /// Frozen releases' vmstate dumps (`<release>/<machine>.vmstate.json`), read by
    /// `GET /compatibility`.
    public var fixturesDir: String = "Tests/Fixtures/releases"

    /// Another emupanel host this one may migrate guests to.
    public struct Peer: Sendable, Codable, Equatable {
        public var name: String
        public var url: String
        public var token: String
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = PanelConfiguration()
        listen = try container.decodeIfPresent(String.self, forKey: .listen) ?? defaults.listen
        dataDir = try container.decodeIfPresent(String.self, forKey: .dataDir) ?? defaults.dataDir
        publicDir = try container.decodeIfPresent(String.self, forKey: .publicDir) ?? defaults.publicDir
        guestsDir = try container.decodeIfPresent(String.self, forKey: .guestsDir) ?? defaults.guestsDir
        token = try container.decodeIfPresent(String.self, forKey: .token)
        server = try container.decodeIfPresent(ServerConfiguration.self, forKey: .server) ?? defaults.server
        peers = try container.decodeIfPresent([Peer].self, forKey: .peers) ?? []
        sessionHours = try container.decodeIfPresent(Double.self, forKey: .sessionHours) ?? defaults.sessionHours
        demoGuest = try container.decodeIfPresent(Bool.self, forKey: .demoGuest) ?? defaults.demoGuest
        deprecationYears = try container.decodeIfPresent(Double.self, forKey: .deprecationYears) ?? defaults.deprecationYears
        fixturesDir = try container.decodeIfPresent(String.self, forKey: .fixturesDir) ?? defaults.fixturesDir
    }

    public static func load(path: String) throws -> PanelConfiguration {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigurationError("cannot read \(path): \(error.localizedDescription)")
        }
        do {
            return try JSONDecoder().decode(PanelConfiguration.self, from: data)
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context),
                let DecodingError.keyNotFound(_, context), let DecodingError.dataCorrupted(context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ConfigurationError("\(path): \(key.isEmpty ? "" : "'\(key)': ")\(context.debugDescription)")
        }
    }

    /// Splits `listen` into the server's host and port.
    public mutating func applyListen() throws {
        let (host, port) = try Self.parseListen(listen)
        server.host = host
        server.port = port
    }

    public static func parseListen(_ text: String) throws -> (String, UInt16) {
        var host: Substring
        var portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ConfigurationError("listen address '\(text)' must look like [IPv6]:PORT")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ConfigurationError("listen address '\(text)' must look like HOST:PORT")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        if host == "localhost" { host = "127.0.0.1" }
        guard let port = UInt16(portText) else {
            throw ConfigurationError("listen port '\(portText)' must be a number 0...65535")
        }
        return (String(host), port)
    }

    public func validate() throws {
        try server.validate()
        guard sessionHours > 0, sessionHours <= 24 * 365 else { throw ConfigurationError("sessionHours must be in (0, 8760]") }
        guard deprecationYears >= 1, deprecationYears <= 100, deprecationYears.rounded() == deprecationYears else {
            throw ConfigurationError("deprecationYears must be a whole number of years in 1…100")
        }
        var names = Set<String>()
        for peer in peers {
            guard !peer.name.isEmpty, names.insert(peer.name).inserted else {
                throw ConfigurationError("peer names must be unique and non-empty ('\(peer.name)')")
            }
            guard let url = URL(string: peer.url), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw ConfigurationError("peer '\(peer.name)' has an invalid url '\(peer.url)'")
            }
        }
    }
}

extension PanelConfiguration {
    /// The deprecation rule of `deprecationYears` (validated to whole years).
    public var deprecationPolicy: DeprecationPolicy { DeprecationPolicy(maximumAgeInYears: Int(deprecationYears)) }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
