import EmulatorCore
import Foundation
import HTTPTestSupport
import Logging
import PanelCore
import PanelHTTP
import Synchronization
import Testing

/// A real panel on an ephemeral port with its own data directory and a known token.
final class PanelFixture: Sendable {
    static let token = "test-token-0123456789"
    let app: PanelApp
    let dataDir: String

    var port: UInt16 { app.port }

    init(
        machines: MachineRegistry = .empty, environment: [String: String] = ["EMUPANEL_TOKEN": PanelFixture.token],
        logger: Logger = Logger(label: "emupanel"), configure: (inout PanelConfiguration) -> Void = { _ in }
    ) throws {
        dataDir = NSTemporaryDirectory() + "emupanel-panel-\(UUID().uuidString)"
        var configuration = PanelConfiguration()
        configuration.listen = "127.0.0.1:0"
        configuration.settings.dataDir = dataDir
        configuration.publicDir = Self.publicDir
        configuration.settings.guestsDir = URL(fileURLWithPath: Self.publicDir).deletingLastPathComponent().appendingPathComponent("guests").path
        // QEMU's discovery only where a test asks for it (`PanelFixture.withQEMU`).
        configuration.settings.qemu.enabled = false
        configure(&configuration)
        app = try PanelApp(configuration: configuration, machines: machines, environment: environment, logger: logger)
        try app.start()
    }

    deinit {
        app.stop()
        try? FileManager.default.removeItem(atPath: dataDir)
    }

    /// The repository's Public/ directory.
    static var publicDir: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Public").path
    }

    func get(_ path: String, token: String? = PanelFixture.token, headers: [String: String] = [:]) throws -> RawHTTPConnection.Reply {
        var headers = headers
        if let token { headers["Authorization"] = "Bearer \(token)" }
        return checked("GET", path, try httpRequest(port: port, "GET", path, headers: headers))
    }

    func send(
        _ method: String, _ path: String, json: [String: Any]? = nil, token: String? = PanelFixture.token,
        headers: [String: String] = [:]
    ) throws -> RawHTTPConnection.Reply {
        var headers = headers
        if let token { headers["Authorization"] = "Bearer \(token)" }
        if json != nil { headers["Content-Type"] = "application/json" }
        return checked(method, path, try httpRequest(port: port, method, path, headers: headers, body: json.map(jsonBody) ?? []))
    }

    /// Every answer a test gets must match the served OpenAPI document.
    private func checked(_ method: String, _ path: String, _ reply: RawHTTPConnection.Reply) -> RawHTTPConnection.Reply {
        guard let validator = validator() else { return reply }
        for problem in validator.problems(
            method: method, path: path, status: reply.status,
            contentType: reply.header("Content-Type"), body: reply.body)
        {
            Issue.record("the answer does not match openapi.json: \(problem)")
        }
        return reply
    }

    private let document = Mutex<OpenAPIValidator?>(nil)

    private func validator() -> OpenAPIValidator? {
        if let known = document.withLock({ $0 }) { return known }
        guard let reply = try? httpRequest(port: port, "GET", "/api/v1/openapi.json", headers: ["Authorization": "Bearer \(Self.token)"]),
            reply.status == 200, let json = try? reply.json()
        else { return nil }
        let validator = OpenAPIValidator(document: json)
        document.withLock { $0 = validator }
        return validator
    }
}

/// Flips one byte in the middle of a file (a snapshot's RAM): the stream still parses, only the
/// checksum can tell.
func flipMiddleByte(of path: String) throws {
    let file = try #require(FileHandle(forUpdatingAtPath: path))
    let size = try file.seekToEnd()
    try file.seek(toOffset: size / 2)
    let byte = try #require(try file.read(upToCount: 1)).first!
    try file.seek(toOffset: size / 2)
    try file.write(contentsOf: [byte ^ 0x5a])
    try file.close()
}
