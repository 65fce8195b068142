import Foundation
import Logging
import QEMUBackend
import Synchronization

/// The QEMUs this host has (SPEC §8 "Backends"): every qemu-system-* binary found at start, with
/// its version and machine types, each type's tier computed from what QEMU reports. Discovery
/// runs in the background so a start is never held up by it; probes are cached per binary under
/// the data dir (`qemu.cacheDir`), so only the first start after installing or upgrading QEMU
/// pays for them. Whoever needs the answer before it is there waits for it, bounded.
public final class QEMUHost: Sendable {
    public enum Status: String, Sendable, Encodable {
        /// `qemu.enabled` is off: no QEMU machine types, no QEMU guests.
        case disabled
        /// Discovery is still probing.
        case discovering
        case ready
    }

    /// What discovery found.
    struct Found: Sendable {
        var binaries: [QEMUBinary]
        var failures: [QEMUHostSummary.Failure]
    }

    let discovery: QEMUDiscovery?
    private let names: Set<String>?
    private let found = Mutex<Found?>(nil)
    private let described = StateDescriptionsCache()
    private let finished = DispatchSemaphore(value: 0)
    private let started = Atomic<Bool>(false)
    private let logger: Logger
    /// How long a request waits for a discovery still under way before it is told to come back.
    static let requestWait = 60.0

    init(settings: PanelSettings, logger: Logger) {
        self.logger = logger
        guard settings.qemu.enabled else {
            discovery = nil
            names = nil
            return
        }
        discovery = QEMUDiscovery(
            cacheDirectory: settings.qemu.cacheDir ?? settings.dataDir + "/qemu",
            searchPath: settings.qemu.searchPath)
        names = settings.qemu.binaries.map(Set.init)
    }

    /// Starts discovery on a thread of its own (once).
    public func startDiscovery() {
        guard let discovery, !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let thread = Thread { [self] in
            let began = ContinuousClock.now
            let result = discovery.discover(names: names)
            let failures = result.failures.map { QEMUHostSummary.Failure(path: $0.path, reason: $0.reason) }
            for failure in failures {
                logger.warning("a QEMU binary could not be probed", metadata: ["binary": "\(failure.path)", "reason": "\(failure.reason)"])
            }
            logger.info(
                "QEMU discovery finished",
                metadata: [
                    "binaries": "\(result.binaries.map(\.name).joined(separator: " "))",
                    "seconds": "\(String(format: "%.2f", ThreadStat.seconds(ContinuousClock.now - began)))",
                ])
            found.withLock { $0 = Found(binaries: result.binaries, failures: failures) }
            finished.signal()
        }
        thread.name = "emupanel-qemu-discovery"
        thread.start()
    }

    public var status: Status {
        guard discovery != nil else { return .disabled }
        return found.withLock { $0 } == nil ? .discovering : .ready
    }

    /// What discovery found, waiting up to `seconds` for it; nil while it is still under way.
    func result(waiting seconds: Double) -> Found? {
        guard discovery != nil else { return Found(binaries: [], failures: []) }
        if let known = found.withLock({ $0 }) { return known }
        startDiscovery()
        guard finished.wait(timeout: .now() + seconds) == .success else { return nil }
        finished.signal()
        return found.withLock { $0 }
    }

    /// The binaries found; a request that comes while discovery still probes waits for it a while,
    /// then is told to come back (503, Retry-After).
    func binaries(waiting seconds: Double = requestWait) throws -> [QEMUBinary] {
        guard let found = result(waiting: seconds) else {
            throw PanelError.busy("QEMU discovery is still probing this host's qemu-system-* binaries; retry shortly", retryAfter: 10)
        }
        return found.binaries
    }

    /// The binary named `name` (`qemu-system-riscv64`).
    func binary(named name: String) throws -> QEMUBinary {
        guard discovery != nil else {
            throw PanelError(.invalid, code: "qemu_disabled", message: "the QEMU backend is off on this host (qemu.enabled)")
        }
        guard let binary = try binaries().first(where: { $0.name == name }) else {
            throw PanelError(
                .invalid, code: "qemu_missing",
                message: "this host has no \(name); found: \(((try? binaries()) ?? []).map(\.name).joined(separator: ", "))")
        }
        return binary
    }

    /// The type `name` (or the type it is an alias of) with its binary: in `binary` when named,
    /// else in the binaries of `arch` when given, else in any. Several binaries may list one name
    /// (`pc-q35-7.2` in qemu-system-x86_64 and its microvm build): the one that starts the type
    /// with its defaults wins, then the plain `qemu-system-ARCH`, then the first by name.
    func machineType(_ name: String, binary: String? = nil, arch: String? = nil) throws -> (QEMUBinary, QEMUMachineType) {
        let all = try binaries()
        let binaries = all.filter { (binary == nil || $0.name == binary) && (arch == nil || $0.arch == arch) }
        if let binary, !all.contains(where: { $0.name == binary }) {
            throw PanelError(
                .invalid, code: "qemu_missing",
                message: "this host has no \(binary); found: \(all.map(\.name).joined(separator: ", "))")
        }
        let candidates = binaries.compactMap { binary in binary.machineType(name).map { (binary, $0) } }
        guard let best = candidates.min(by: { Self.preference($0) < Self.preference($1) }) else {
            let place = binary ?? arch.map { "the \($0) QEMU binaries" } ?? "any QEMU binary"
            throw PanelError(
                .invalid, code: "unknown_machine_type",
                message: "\(place) here \(all.isEmpty ? "(none were found)" : "has") no machine type '\(name)'")
        }
        return best
    }

    private static func preference(_ candidate: (QEMUBinary, QEMUMachineType)) -> (Int, Int, String) {
        (candidate.1.probeError == nil ? 0 : 1, candidate.0.name == "qemu-system-" + candidate.0.arch ? 0 : 1, candidate.0.name)
    }

    /// QEMU's `-dump-vmstate` for `machineType` of `binary` (cached on disk by discovery).
    func vmstateDump(_ binary: QEMUBinary, machineType: String) throws -> String {
        guard let discovery else { throw PanelError(.invalid, code: "qemu_disabled", message: "the QEMU backend is off on this host") }
        do {
            return try discovery.vmstateDump(binary: binary.path, machineType: machineType)
        } catch {
            throw PanelError(
                .invalid, code: "vmstate_unavailable",
                message: "\(binary.name) did not dump the state descriptions of \(machineType): \(error)")
        }
    }

    /// The descriptions an offer carries for `machineType` of `binary`, made once per build.
    func stateDescriptions(_ binary: QEMUBinary, machineType: String) throws -> StateDescriptions {
        let build = binary.identity
        return try described.descriptions("\(build.path) \(build.size) \(build.modificationTimeNanoseconds) \(machineType)") {
            try vmstateDump(binary, machineType: machineType)
        }
    }

    /// What `GET /host` shows.
    public func summary() -> QEMUHostSummary {
        let found = found.withLock { $0 }
        return QEMUHostSummary(
            status: status,
            binaries: (found?.binaries ?? []).map {
                .init(
                    name: $0.name, path: $0.path, version: $0.version.description, package: $0.version.package, arch: $0.arch,
                    sandbox: $0.sandbox, machineTypes: $0.machineTypes.count)
            },
            failures: found?.failures ?? [])
    }
}

/// The QEMU binaries `GET /host` lists.
public struct QEMUHostSummary: Sendable, Encodable {
    public var status: QEMUHost.Status
    public var binaries: [Binary]
    /// Binaries found but not usable, with QEMU's reason.
    public var failures: [Failure]

    public struct Binary: Sendable, Encodable {
        public var name: String
        public var path: String
        /// major.minor.micro as QEMU reports it.
        public var version: String
        /// The distribution's package version ("Debian 1:7.2+dfsg-7+deb12u18+b3").
        public var package: String
        public var arch: String
        /// Guests run under QEMU's seccomp sandbox.
        public var sandbox: Bool
        public var machineTypes: Int
    }

    public struct Failure: Sendable, Encodable {
        public var path: String
        public var reason: String
    }
}
