import Foundation
import PanelCore

/// The admin token (SPEC §6): `EMUPANEL_TOKEN`, else the config's `token`, else the one
/// generated at first start into `<data-dir>/admin-token` with mode 0600.
public struct AdminToken: Sendable {
    public enum Source: String, Sendable { case environment, configuration, generated, file }

    public let value: String
    public let source: Source

    public static func resolve(environment: [String: String], configured: String?, dataDir: String) throws -> AdminToken {
        if let value = environment["EMUPANEL_TOKEN"], !value.isEmpty {
            try check(value, "EMUPANEL_TOKEN")
            return AdminToken(value: value, source: .environment)
        }
        if let configured, !configured.isEmpty {
            try check(configured, "the configuration's token")
            return AdminToken(value: configured, source: .configuration)
        }
        let path = dataDir + "/admin-token"
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
            try check(value, path)
            return AdminToken(value: value, source: .file)
        }
        let value = Secrets.randomHex(bytes: 24)
        try FileManager.default.createDirectory(
            atPath: dataDir, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        // O_EXCL + 0600 from the start: the token is never readable by others, not even briefly.
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ConfigurationError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let line = Array((value + "\n").utf8)
        guard write(fd, line, line.count) == line.count, fsync(fd) == 0 else {
            unlink(path)
            throw ConfigurationError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        return AdminToken(value: value, source: .generated)
    }

    private static func check(_ value: String, _ origin: String) throws {
        guard value.count >= 8, value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw ConfigurationError("\(origin) must be at least 8 printable ASCII characters without spaces")
        }
    }
}
