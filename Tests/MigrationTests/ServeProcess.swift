// Real `emupanel serve` processes on loopback for migration tests: each with its own data
// directory and token, killed at the end.
import Foundation
import HTTPTestSupport
import Testing

final class ServeProcess {
    let process = Process()
    let dataDir: String
    let token: String
    private(set) var port: UInt16 = 0
    private let outPath: String
    private let errPath: String
    /// A restart shares its predecessor's directory, which that one removes.
    private let ownsDataDir: Bool

    static let binary: String = {
        let beside = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("emupanel").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        return root.appendingPathComponent(".build/debug/emupanel").path
    }()

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// With `reusing`, the panel starts on another's data directory (and token): a restart.
    /// Unless `waitForListening` is false, it returns once the panel listens.
    init(
        name: String, peers: [(name: String, port: UInt16, token: String)] = [], reusing earlier: ServeProcess? = nil,
        logLevel: String = "warning", waitForListening: Bool = true
    ) throws {
        dataDir = earlier?.dataDir ?? NSTemporaryDirectory() + "emupanel-\(name)-\(UUID().uuidString)"
        token = earlier?.token ?? "token-\(name)-\(UUID().uuidString.prefix(8))"
        ownsDataDir = earlier == nil
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        let config: [String: Any] = [
            "listen": "127.0.0.1:0", "dataDir": dataDir,
            "publicDir": Self.root.appendingPathComponent("Public").path,
            "guestsDir": Self.root.appendingPathComponent("guests").path,
            "peers": peers.map { ["name": $0.name, "url": "http://127.0.0.1:\($0.port)", "token": $0.token] },
        ]
        let configPath = dataDir + "/config.json"
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
        outPath = dataDir + "/serve-\(UUID().uuidString.prefix(8)).out"
        errPath = outPath.replacingOccurrences(of: ".out", with: ".err")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve", "--config", configPath, "--log-level", logLevel]
        process.environment = ProcessInfo.processInfo.environment.merging(["EMUPANEL_TOKEN": token]) { $1 }
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: errPath)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        guard waitForListening else { return }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let text = String(decoding: FileManager.default.contents(atPath: outPath) ?? Data(), as: UTF8.self)
            if let range = text.range(of: #"http://127\.0\.0\.1:(\d+)/"#, options: .regularExpression) {
                let match = text[range].dropFirst("http://127.0.0.1:".count).dropLast()
                port = UInt16(match) ?? 0
                return
            }
            usleep(20_000)
        }
        process.terminate()
        throw TestHTTPError.timeout
    }

    deinit {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
        if ownsDataDir { try? FileManager.default.removeItem(atPath: dataDir) }
    }

    /// What the panel logged to stderr so far.
    var log: String { String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self) }

    /// SIGTERM, as an operator's `systemctl stop` would; returns how the process ended.
    func terminate() -> (reason: Process.TerminationReason, status: Int32) {
        process.terminate()
        process.waitUntilExit()
        return (process.terminationReason, process.terminationStatus)
    }

    func kill() {
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func get(_ path: String) throws -> [String: Any] {
        try checked("GET", path, try httpRequest(port: port, "GET", "/api/v1" + path, headers: ["Authorization": "Bearer \(token)"])).json()
    }

    func send(_ method: String, _ path: String, _ body: [String: Any]? = nil) throws -> RawHTTPConnection.Reply {
        checked(
            method, path,
            try httpRequest(
                port: port, method, "/api/v1" + path, headers: ["Authorization": "Bearer \(token)"],
                body: body.map(jsonBody) ?? []))
    }

    /// Every answer must match the served OpenAPI document.
    private func checked(_ method: String, _ path: String, _ reply: RawHTTPConnection.Reply) -> RawHTTPConnection.Reply {
        if validator == nil,
            let document = try? httpRequest(
                port: port, "GET", "/api/v1/openapi.json",
                headers: ["Authorization": "Bearer \(token)"]
            ).json()
        {
            validator = OpenAPIValidator(document: document)
        }
        for problem in validator?.problems(
            method: method, path: "/api/v1" + path, status: reply.status,
            contentType: reply.header("Content-Type"), body: reply.body) ?? []
        {
            Issue.record("the answer does not match openapi.json: \(problem)")
        }
        return reply
    }

    private var validator: OpenAPIValidator?

    func waitForTask(_ id: String, timeout: Double = 120) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let task = try get("/tasks/\(id)")
            if let status = task["status"] as? String, ["succeeded", "failed", "cancelled"].contains(status) { return task }
            usleep(50_000)
        }
        throw TestHTTPError.timeout
    }

    func console(_ id: String, since: Int = 0, wait: Int = 2) throws -> (text: String, next: Int) {
        let chunk = try get("/guests/\(id)/console?since=\(since)&wait=\(wait)")
        return (chunk["data"] as? String ?? "", chunk["next"] as? Int ?? since)
    }
}
