// Finds the qemu-system-* binaries on PATH and asks each what it is: `query-version` and
// `query-machines` from a `-machine none -S` QEMU, then every machine type started once
// with `-S` and its default devices to see whether QEMU blocks its migration
// (`query-migrate` → `blocked-reasons`, or a refused `migrate` for QEMUs without that
// field). Results are cached on disk per binary, keyed by path, size and mtime, so only
// the first start after installing or upgrading QEMU pays for the probes.
import Crypto
import Foundation
import Synchronization
import VMState

public struct QEMUDiscoveryResult: Sendable {
    public var binaries: [QEMUBinary]
    /// Binaries found but not usable, with QEMU's reason.
    public var failures: [(path: String, reason: String)]
}

public final class QEMUDiscovery: Sendable {
    public let cacheDirectory: String
    private let searchPath: [String]
    private let concurrency: Int
    private let timeout: Duration
    private let starts = Atomic<Int>(0)

    /// `cacheDirectory` holds the probe results and `-dump-vmstate` files (created 0700);
    /// `searchPath` is a PATH-style list (default: this process's PATH); `concurrency` QEMUs
    /// are probed at once.
    public init(cacheDirectory: String, searchPath: String? = nil, concurrency: Int = 2, timeout: Duration = .seconds(30)) {
        self.cacheDirectory = cacheDirectory
        self.searchPath = (searchPath ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
            .split(separator: ":").map(String.init).filter { $0.hasPrefix("/") }
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
    }

    /// QEMU processes this discovery started (probes and dumps); a cached answer starts none.
    public var qemuStarts: Int { starts.load(ordering: .relaxed) }

    /// The qemu-system-* executables on the search path, the first of each name (as a shell
    /// would run it), sorted by name; only `names` when given.
    public func binaryPaths(names: Set<String>? = nil) -> [String] {
        var found: [String: String] = [:]
        for directory in searchPath {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for entry in entries where entry.hasPrefix("qemu-system-") && found[entry] == nil {
                if let names, !names.contains(entry) { continue }
                let path = directory + "/" + entry
                if access(path, X_OK) == 0 { found[entry] = path }
            }
        }
        return found.keys.sorted().map { found[$0]! }
    }

    /// Every binary found, probed or read from the cache.
    public func discover(names: Set<String>? = nil) -> QEMUDiscoveryResult {
        var result = QEMUDiscoveryResult(binaries: [], failures: [])
        for path in binaryPaths(names: names) {
            do { result.binaries.append(try probe(binary: path)) } catch {
                result.failures.append((path, "\(error)"))
            }
        }
        return result
    }

    /// One binary's version and machine types with their tiers, from the cache when the
    /// binary has not changed since it was probed.
    public func probe(binary path: String) throws -> QEMUBinary {
        let identity = try QEMUBinaryIdentity(path: path)
        let recordPath = cacheDirectory + "/" + Self.fileStem(path) + ".json"
        if let data = FileManager.default.contents(atPath: recordPath),
            let record = try? JSONDecoder().decode(ProbeRecord.self, from: data),
            record.format == ProbeRecord.currentFormat, record.binary.identity == identity
        {
            return record.binary
        }
        let binary = try probeUncached(identity)
        try writeAtomically(
            try JSONEncoder().encode(ProbeRecord(format: ProbeRecord.currentFormat, binary: binary)),
            to: recordPath)
        return binary
    }

    /// The blockers of `machineType` started with `devices` (`-device` values) besides its
    /// defaults: the "configured device" half of tier none, for one guest's pre-flight.
    public func blockers(binary path: String, machineType: String, devices: [String]) throws -> [QEMUMigrationBlocker] {
        try probeBlockers(
            binary: path, sandbox: try probe(binary: path).sandbox, machineType: machineType,
            devices: devices)
    }

    /// QEMU's `-dump-vmstate` for `machineType` (the JSON VMStateCheck compares), cached.
    public func vmstateDump(binary path: String, machineType: String) throws -> String {
        guard QEMUCommandLine.isSafeName(machineType) else {
            throw QEMUError.invalidConfiguration("machine type '\(machineType)' is not a QEMU machine type name")
        }
        let identity = try QEMUBinaryIdentity(path: path)
        let sandbox = try probe(binary: path).sandbox
        let directory = cacheDirectory + "/vmstate/" + Self.fileStem(path) + "-" + Self.digest(identity)
        let file = directory + "/" + machineType + ".json"
        if let data = FileManager.default.contents(atPath: file) { return String(decoding: data, as: UTF8.self) }
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        let work = try workDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let output = work + "/dump.json"
        var line = QEMUCommandLine(executable: path)
        line.headless(sandbox: sandbox)
        line.add("-machine", machineType, "-dump-vmstate", output)
        starts.add(1, ordering: .relaxed)
        let process = try QEMUProcess(
            executable: path, arguments: line.arguments, directory: work,
            logPath: work + "/qemu.log")
        guard let exit = process.waitForExit(timeout: timeout) else {
            process.terminate()
            throw QEMUError.timedOut("waiting for \(path) -dump-vmstate")
        }
        guard exit.succeeded, let data = FileManager.default.contents(atPath: output) else { throw QEMUError.exited(exit) }
        let text = String(decoding: data, as: UTF8.self)
        // Only a dump the checker can read goes into the cache.
        _ = try JSONValue.parse(text)
        try writeAtomically(data, to: file)
        return text
    }

    // MARK: Probing

    private struct ProbeRecord: Codable {
        static let currentFormat = 2
        var format: Int
        var binary: QEMUBinary
    }

    private func probeUncached(_ identity: QEMUBinaryIdentity) throws -> QEMUBinary {
        let path = identity.path
        let work = try workDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        // Without -sandbox: whether the binary has it is one of the questions.
        var line = QEMUCommandLine(executable: path)
        line.headless(sandbox: false)
        line.add("-machine", "none", "-S", "-nodefaults")
        starts.add(1, ordering: .relaxed)
        let instance = try QEMUInstance.launch(
            line, directory: work, logPath: work + "/qemu.log",
            monitorPath: work + "/qmp.sock", timeout: timeout)
        let version: QEMUVersion
        let listed: [QMPValue]
        let sandbox: Bool
        do {
            defer { instance.quit() }
            guard let reported = QEMUVersion(qmp: try instance.qmp.execute("query-version", timeout: timeout)) else {
                throw QMPError.protocolViolation("query-version without a version")
            }
            version = reported
            listed = try instance.qmp.execute("query-machines", timeout: timeout).arrayValue ?? []
            sandbox = (try? instance.qmp.execute("query-command-line-options", ["option": "sandbox"], timeout: timeout)) != nil
        }
        var machines = listed.compactMap { entry -> QEMUMachineType? in
            guard let name = entry["name"]?.stringValue, name != "none", QEMUCommandLine.isSafeName(name) else { return nil }
            return QEMUMachineType(
                name: name, alias: entry["alias"]?.stringValue,
                isDefault: entry["is-default"]?.boolValue ?? false,
                deprecated: entry["deprecated"]?.boolValue ?? false)
        }.sorted { $0.name < $1.name }
        let outcomes = parallelMap(machines.map(\.name)) { name in
            Result { try self.probeBlockers(binary: path, sandbox: sandbox, machineType: name, devices: []) }
        }
        for index in machines.indices {
            switch outcomes[index] {
            case .success(let blockers): machines[index].blockers = blockers
            case .failure(let error): machines[index].probeError = Self.shortReason(error)
            }
        }
        return QEMUBinary(path: path, identity: identity, version: version, machineTypes: machines, sandbox: sandbox)
    }

    /// Starts the machine paused with its default devices (and `devices`) and asks QEMU.
    private func probeBlockers(
        binary: String, sandbox: Bool, machineType: String, devices: [String]
    ) throws
        -> [QEMUMigrationBlocker]
    {
        guard QEMUCommandLine.isSafeName(machineType) else {
            throw QEMUError.invalidConfiguration("machine type '\(machineType)' is not a QEMU machine type name")
        }
        let work = try workDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        var line = QEMUCommandLine(executable: binary)
        line.headless(sandbox: sandbox)
        line.add("-machine", machineType, "-S", "-monitor", "none", "-serial", "null", "-parallel", "none")
        for device in devices { line.add("-device", device) }
        starts.add(1, ordering: .relaxed)
        let instance = try QEMUInstance.launch(
            line, directory: work, logPath: work + "/qemu.log",
            monitorPath: work + "/qmp.sock", timeout: timeout)
        defer { instance.quit() }
        let qmp = instance.qmp
        let reasons = try qmp.execute("query-migrate", timeout: timeout)["blocked-reasons"]?.arrayValue ?? []
        if !reasons.isEmpty { return reasons.compactMap(\.stringValue).map(QEMUMigrationBlocker.init(qemuReason:)) }
        // QEMU before 6.0 has no blocked-reasons: there a migrate to a sink is refused instead.
        // The sink's far end is closed, so a migration that does start fails at once.
        let (ours, theirs) = try UnixSocket.pair(bufferBytes: 64 << 10)
        close(ours)
        defer { close(theirs) }
        try qmp.execute("getfd", ["fdname": "emupanel-probe"], timeout: timeout, passing: theirs)
        do {
            try qmp.execute("migrate", ["uri": "fd:emupanel-probe"], timeout: timeout)
        } catch QMPError.commandFailed(_, _, let description) {
            _ = try? qmp.execute("closefd", ["fdname": "emupanel-probe"], timeout: timeout)
            return [QEMUMigrationBlocker(qemuReason: description)]
        }
        _ = try? qmp.execute("migrate_cancel", timeout: timeout)
        return []
    }

    /// `body` over `items` on `concurrency` threads of our own (each blocks on a QEMU), in order.
    private func parallelMap<T: Sendable, R: Sendable>(_ items: [T], _ body: @escaping @Sendable (T) -> R) -> [R] {
        let results = Mutex<[Int: R]>([:])
        let next = Atomic<Int>(0)
        let done = DispatchSemaphore(value: 0)
        let workers = min(concurrency, items.count)
        for _ in 0..<workers {
            let thread = Thread {
                while true {
                    let index = next.add(1, ordering: .relaxed).oldValue
                    guard index < items.count else { break }
                    let result = body(items[index])
                    results.withLock { $0[index] = result }
                }
                done.signal()
            }
            thread.name = "emupanel-qemu-probe"
            thread.start()
        }
        for _ in 0..<workers { done.wait() }
        return results.withLock { collected in items.indices.map { collected[$0]! } }
    }

    // MARK: Files

    /// A fresh directory for one probe's socket and log (short: sockets have a path limit).
    private func workDirectory() throws -> String {
        let path = cacheDirectory + "/work/" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(
            atPath: path, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        return path
    }

    private func writeAtomically(_ data: Data, to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        let temporary = directory + "/." + (path as NSString).lastPathComponent + "." + UUID().uuidString.prefix(8)
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw QEMUError.io(operation: "write \(temporary)", errno: errno)
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw QEMUError.io(operation: "rename to \(path)", errno: code)
        }
    }

    /// `qemu-system-riscv64-1a2b3c4d5e6f`: the name for people, a hash of the path for uniqueness.
    private static func fileStem(_ path: String) -> String {
        (path as NSString).lastPathComponent + "-" + String(hex(SHA256.hash(data: Data(path.utf8))).prefix(12))
    }

    private static func digest(_ identity: QEMUBinaryIdentity) -> String {
        let key = "\(identity.path)\n\(identity.size)\n\(identity.modificationTimeNanoseconds)"
        return String(hex(SHA256.hash(data: Data(key.utf8))).prefix(16))
    }

    private static func hex(_ digest: SHA256.Digest) -> String { digest.map { String(format: "%02x", $0) }.joined() }

    /// QEMU's own words for why a machine does not start, without our wrapping.
    private static func shortReason(_ error: Error) -> String {
        if case QEMUError.exited(let exit) = error, !exit.reason.isEmpty { return exit.reason }
        return "\(error)"
    }
}
