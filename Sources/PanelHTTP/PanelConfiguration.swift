import Foundation
import HTTPServer
import PanelCore

/// Config/emupanel.json: where to listen, the web UI, the token and the server's limits, plus
/// the services' settings (`PanelSettings`) from the same top-level keys. Every key is optional;
/// command-line flags override the file.
public struct PanelConfiguration: Sendable, Decodable, Equatable {
    /// `HOST:PORT`; IPv6 as `[::1]:8080`.
    public var listen: String = "127.0.0.1:8080"
    public var publicDir: String = "Public"
    /// Admin token; `EMUPANEL_TOKEN` wins over it, and without either one is generated.
    public var token: String?
    public var server: ServerConfiguration = ServerConfiguration()
    /// Failed authentication per client before 429 `rate_limited`: `{"burst": 10, "refillSeconds": 6}`.
    public var authRateLimit = AuthRateLimit()
    /// dataDir, guestsDir, peers, sessionHours, demoGuest, deprecationYears, fixturesDir.
    public var settings = PanelSettings()

    public init() {}

    private enum CodingKeys: String, CodingKey { case listen, publicDir, token, server, authRateLimit }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = PanelConfiguration()
        listen = try container.decodeIfPresent(String.self, forKey: .listen) ?? defaults.listen
        publicDir = try container.decodeIfPresent(String.self, forKey: .publicDir) ?? defaults.publicDir
        token = try container.decodeIfPresent(String.self, forKey: .token)
        server = try container.decodeIfPresent(ServerConfiguration.self, forKey: .server) ?? defaults.server
        authRateLimit = try container.decodeIfPresent(AuthRateLimit.self, forKey: .authRateLimit) ?? defaults.authRateLimit
        settings = try PanelSettings(from: decoder)
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
            let DecodingError.keyNotFound(_, context), let DecodingError.dataCorrupted(context)
        {
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
        try authRateLimit.validate()
        try settings.validate()
    }
}

public typealias AuthRateLimit = AuthFailureLimiter.Policy
