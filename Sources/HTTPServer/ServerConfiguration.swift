/// Where the server listens and how far a client may push it (SPEC §6: everything bounded).
public struct ServerConfiguration: Sendable, Codable, Equatable {
    /// IPv4 or IPv6 literal; 127.0.0.1 unless told otherwise.
    public var host: String = "127.0.0.1"
    /// 0 asks the kernel for a free port (tests); `HTTPServer.port` tells which.
    public var port: UInt16 = 8080
    /// libmicrohttpd epoll threads.
    public var threads: Int = 2
    public var maxConnections: Int = 512
    public var maxConnectionsPerIP: Int = 128
    /// Idle connections are closed after this long; suspended ones (long poll, SSE) are kept alive by heartbeats.
    public var connectionTimeoutSeconds: Int = 60
    /// A request's head and body must arrive within this long of the connection starting to wait
    /// for it (accepted, or its previous response sent): however steadily bytes trickle in, a
    /// slow client cannot hold a connection longer (slowloris). Answering is not counted.
    public var requestTimeoutSeconds: Double = 10
    /// Per-connection memory for headers and buffers (libmicrohttpd's default); larger headers are refused.
    /// libmicrohttpd clears it between requests, so bigger costs throughput.
    public var connectionMemoryBytes: Int = 32 << 10
    /// Larger request bodies are answered 413 (a route may set a smaller limit).
    public var maxBodyBytes: Int = 1 << 20
    /// Request bodies held in memory at once, over all connections; a body that does not fit is
    /// answered 503 with Retry-After (from its head when it announces its length).
    public var maxBufferedBodyBytes: Int = 64 << 20
    /// Names this server answers to besides its listen address (and, on loopback, `localhost`;
    /// on any address, the machine's host name): a request whose `Host` names something else is
    /// answered 421, so a DNS-rebound name cannot reach the API from a browser.
    public var hostNames: [String] = []
    /// Comment lines sent on idle event streams so dead peers are noticed.
    public var heartbeatSeconds: Double = 15

    public init() {}

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = ServerConfiguration()
        host = try container.decodeIfPresent(String.self, forKey: .host) ?? defaults.host
        port = try container.decodeIfPresent(UInt16.self, forKey: .port) ?? defaults.port
        threads = try container.decodeIfPresent(Int.self, forKey: .threads) ?? defaults.threads
        maxConnections = try container.decodeIfPresent(Int.self, forKey: .maxConnections) ?? defaults.maxConnections
        maxConnectionsPerIP = try container.decodeIfPresent(Int.self, forKey: .maxConnectionsPerIP) ?? defaults.maxConnectionsPerIP
        connectionTimeoutSeconds = try container.decodeIfPresent(Int.self, forKey: .connectionTimeoutSeconds) ?? defaults.connectionTimeoutSeconds
        requestTimeoutSeconds = try container.decodeIfPresent(Double.self, forKey: .requestTimeoutSeconds) ?? defaults.requestTimeoutSeconds
        connectionMemoryBytes = try container.decodeIfPresent(Int.self, forKey: .connectionMemoryBytes) ?? defaults.connectionMemoryBytes
        maxBodyBytes = try container.decodeIfPresent(Int.self, forKey: .maxBodyBytes) ?? defaults.maxBodyBytes
        maxBufferedBodyBytes = try container.decodeIfPresent(Int.self, forKey: .maxBufferedBodyBytes) ?? defaults.maxBufferedBodyBytes
        hostNames = try container.decodeIfPresent([String].self, forKey: .hostNames) ?? defaults.hostNames
        heartbeatSeconds = try container.decodeIfPresent(Double.self, forKey: .heartbeatSeconds) ?? defaults.heartbeatSeconds
    }

    /// Rejects values libmicrohttpd would misbehave with.
    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws {
            if !ok { throw ServerError.invalidConfiguration(message) }
        }
        try check((1...64).contains(threads), "threads must be 1...64")
        try check((1...100_000).contains(maxConnections), "maxConnections must be 1...100000")
        try check((1...100_000).contains(maxConnectionsPerIP), "maxConnectionsPerIP must be 1...100000")
        try check((1...86_400).contains(connectionTimeoutSeconds), "connectionTimeoutSeconds must be 1...86400")
        try check((8 << 10...16 << 20).contains(connectionMemoryBytes), "connectionMemoryBytes must be 8 KiB...16 MiB")
        try check(requestTimeoutSeconds > 0 && requestTimeoutSeconds <= 3600, "requestTimeoutSeconds must be in (0, 3600]")
        try check((1 << 10...1 << 30).contains(maxBodyBytes), "maxBodyBytes must be 1 KiB...1 GiB")
        try check(
            maxBufferedBodyBytes >= maxBodyBytes && maxBufferedBodyBytes <= 1 << 40,
            "maxBufferedBodyBytes must be at least maxBodyBytes")
        for name in hostNames {
            try check(HostPolicy.normalized(name) != nil, "hostNames: '\(name)' is not a host name")
        }
        try check(heartbeatSeconds > 0 && heartbeatSeconds <= 3600, "heartbeatSeconds must be in (0, 3600]")
    }
}

public enum ServerError: Error, CustomStringConvertible {
    case invalidConfiguration(String)
    case invalidAddress(String)
    case startFailed(String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let message): "invalid server configuration: \(message)"
        case .invalidAddress(let host): "cannot listen on '\(host)': not an IPv4 or IPv6 address"
        case .startFailed(let reason): "cannot start the HTTP server: \(reason)"
        }
    }
}
