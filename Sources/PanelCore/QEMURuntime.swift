import Block
import Foundation
import Migration
import QEMUBackend
import Synchronization

/// A guest on QEMU: one QEMU process in the guest's directory (stderr to the guest's log), driven
/// over QMP; its serial console goes into the same console buffer built-in guests write. QEMU is
/// started only when needed — paused by `prepare()`, or incoming by `load(fromFile:)` and
/// `receive(from:)` — and always with `-S`, so nothing runs before `start(paused:)`.
final class QEMURuntime: GuestRuntime {
    let configuration: QEMUGuestConfiguration
    let directory: String
    let logPath: String
    private let console: ConsoleBuffer
    private let reports: RuntimeReports
    private let owner = RuntimeOwner()
    private let qemu = Mutex<QEMUGuest?>(nil)
    /// What QEMU's callbacks share with the runtime, without holding it.
    private let flags = Flags()

    private final class Flags: Sendable {
        /// Set before the panel ends QEMU itself: that end is no report.
        let stopping = Atomic<Bool>(false)
        /// QEMU's reason from its last SHUTDOWN event ("guest-shutdown"), to say how it ended.
        let shutdownReason = Mutex<String?>(nil)
    }

    init(
        configuration: QEMUGuestConfiguration, directory: String, logPath: String, console: ConsoleBuffer,
        reports: RuntimeReports
    ) {
        self.configuration = configuration
        self.directory = directory
        self.logPath = logPath
        self.console = console
        self.reports = reports
        owner.runtime = self
    }

    /// Where QEMU's output, events and end go.
    private var events: QEMUGuestEvents {
        let (owner, console, reports, flags) = (owner, console, reports, flags)
        return QEMUGuestEvents(
            console: { console.append($0) },
            event: { event in
                guard !flags.stopping.load(ordering: .acquiring), let runtime = owner.runtime else { return }
                switch event {
                case .shutdown(let guestInitiated, let reason):
                    flags.shutdownReason.withLock { $0 = reason }
                    reports.event("guest.qemu", ["event": "SHUTDOWN", "reason": .string(reason), "guestInitiated": .bool(guestInitiated)])
                case .reset(let guestInitiated, let reason):
                    reports.event("guest.qemu", ["event": "RESET", "reason": .string(reason), "guestInitiated": .bool(guestInitiated)])
                    // A reset the panel asked for is announced by the lifecycle already.
                    if guestInitiated { reports.event("guest.reset", ["reason": .string(reason)]) }
                case .stop, .resume:
                    reports.event("guest.qemu", ["event": event == .stop ? "STOP" : "RESUME"])
                    // Not on QMP's event queue: the check takes the guest's lock, whose holder may
                    // be waiting on an event behind this one.
                    DispatchQueue.global().async { reports.runStateChanged(runtime) }
                case .migration, .other:
                    break
                }
            },
            exited: { exit in
                guard !flags.stopping.load(ordering: .acquiring) else { return }
                let shutdown = flags.shutdownReason.withLock { $0 }
                let reason: String
                if exit.status == 0, shutdown == nil || shutdown == "guest-shutdown" {
                    // The test finisher's pass ends QEMU with status 0, with or without SHUTDOWN first.
                    reason = "powered off"
                } else if let shutdown, exit.status == 0 {
                    reason = "QEMU shut down (\(shutdown))"
                } else {
                    reason = "QEMU \(exit)"
                }
                reports.exited(RuntimeExit(runtime: owner.runtime, reason: reason, instructions: 0))
            })
    }

    private var guest: QEMUGuest? { qemu.withLock { $0 } }

    private func running() throws -> QEMUGuest {
        guard let guest, guest.process.exit == nil else {
            throw PanelError.invalidState("the guest's QEMU is not running")
        }
        return guest
    }

    /// Makes `make()`'s QEMU this runtime's: a runtime runs one QEMU in its life (a restore or an
    /// arrival makes a new runtime), so a second is refused before it is started.
    private func adopt(_ make: () throws -> QEMUGuest) throws {
        guard guest == nil else { throw PanelError.invalidState("the guest's QEMU was started already") }
        let guest = try Self.qemuErrors(make)
        qemu.withLock { $0 = guest }
    }

    func prepare() throws {
        guard guest == nil else { return }
        try adopt { try QEMUGuest.start(configuration, directory: directory, logPath: logPath, events: events, paused: true) }
    }

    func start(paused: Bool) throws {
        try prepare()
        if !paused { try Self.qemuErrors { try running().resume() } }
    }

    func pause() throws { try Self.qemuErrors { try running().pause() } }
    func resume() throws { try Self.qemuErrors { try running().resume() } }

    func stop() {
        flags.stopping.store(true, ordering: .releasing)
        guest?.stop()
    }

    func reset() throws { try Self.qemuErrors { try running().reset() } }

    func lowerPriority() { guest?.process.lowerPriority() }

    func type(_ bytes: [UInt8]) -> Bool {
        guard let guest else { return false }
        return (try? guest.sendConsole(bytes)) != nil
    }

    var isAlive: Bool { guest.map { $0.process.exit == nil } ?? false }

    var runsNow: Bool? {
        guard let guest, let state = try? guest.runState() else { return nil }
        return state == "running"
    }

    func load(fromFile path: String, expectedChecksum: String?) throws {
        try adopt {
            try QEMUGuest.restore(
                configuration, fromSnapshot: path, expectedSHA256: expectedChecksum, directory: directory,
                logPath: logPath, events: events, paused: true)
        }
    }

    func saveSnapshot(
        to path: String, transfer: TransferControl, diskFreeze: DiskFreeze?,
        progress: @escaping @Sendable (TransferStats) -> Void
    ) throws -> SavedState {
        guard diskFreeze == nil else { throw Self.noDisks }
        let guest = try running()
        let result = try Self.qemuErrors(cancelled: transfer) {
            try guest.saveSnapshot(to: path, transfer: transfer, progress: progress)
        }
        return SavedState(file: result.file, stats: result.stats)
    }

    func saveForShutdown(to path: String) throws -> SnapshotFile.Written {
        let guest = try running()
        return try Self.qemuErrors {
            if try guest.runState() == "running" { try guest.pause() }
            return try guest.saveSnapshot(to: path, transfer: TransferControl()).file
        }
    }

    /// QEMU writes its stream straight into the ticketed connection (`getfd` + `migrate fd:`): no
    /// copy through the panel. A destination that fails says `ERR …` on the same connection while
    /// the stream still flows (QEMU's source has no return path and never reads it), so the
    /// transfer is given up at once and the caller reads the reason.
    func send(
        over socket: TCPSocket, transfer: TransferControl, diskFreeze: DiskFreeze?,
        destinationReady: () throws -> Void, progress: @escaping @Sendable (TransferStats) -> Void
    ) throws -> TransferStats {
        guard diskFreeze == nil else { throw Self.noDisks }
        let guest = try running()
        let descriptor = socket.fileDescriptor
        // QEMU waits on the socket itself; the panel's timeouts are put back for the verdict.
        socket.setTimeouts(0)
        defer {
            Self.setBlocking(descriptor)
            socket.setTimeouts(30)
        }
        var destinationSpoke = false
        do {
            return try guest.migrate(over: descriptor, transfer: transfer, beforeStreaming: destinationReady, progress: progress) {
                destinationSpoke = destinationSpoke || Self.peerHasSaid("ERR", on: descriptor)
                return destinationSpoke
            }
        } catch QEMUError.migrationCancelled where !destinationSpoke {
            throw MigrationCancelled()
        } catch let error as QEMUError {
            // The destination's reason, if it gave one, is read by the caller from the connection.
            throw PanelError(.conflict, code: "migration_failed", message: "QEMU: \(error)")
        }
    }

    /// The destination's QEMU reads the stream from the connection the panel accepted, after
    /// its ticket line, from QEMU's first moment (`-incoming fd:N`); the port is never QEMU's.
    /// Started once the ticket is checked: the guest's record and runtime are made while the
    /// source connects, and QEMU's start-up overlaps the source's own set-up.
    func receive(from socket: TCPSocket, reading: () -> Void) throws {
        guard !socket.hasBufferedInput else {
            throw PanelError(.invalid, code: "migration_refused", message: "the source sent its stream before its ticket was checked")
        }
        let descriptor = socket.fileDescriptor
        socket.setTimeouts(0)
        defer {
            Self.setBlocking(descriptor)
            socket.setTimeouts(30)
        }
        try adopt {
            try QEMUIncomingMigration.receive(
                configuration, from: descriptor, directory: directory, logPath: logPath, events: events, started: reading)
        }
    }

    /// The panel's disks are the built-in core's (ImageCatalog: the Linux image boots there only).
    static let noDisks = PanelError(.invalid, code: "no_disks_on_qemu", message: "QEMU guests of the panel take no disks yet")

    func swapDisks(_ freeze: DiskFreeze) throws { throw Self.noDisks }
    func replaceDisks(with paths: [String]) throws { throw Self.noDisks }
    func editDisk(_ drive: Int, _ body: @escaping @Sendable (QCOW2Image) throws -> Void) throws { throw Self.noDisks }

    func counters(first: Bool, paused: Bool) -> RuntimeCounters? {
        guard let guest, guest.process.exit == nil else { return nil }
        let pid = guest.process.pid
        return RuntimeCounters(
            retired: nil, dirtyPages: 0, cpuTicks: ThreadStat.cpuTicks(statFile: "/proc/\(pid)/stat"),
            rssBytes: ThreadStat.rssBytes(statm: "/proc/\(pid)/statm") ?? 0)
    }

    // MARK: Helpers

    /// QEMU's errors as the panel's: its own words kept, the status a client can act on.
    private static func qemuErrors<T>(cancelled transfer: TransferControl? = nil, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch QEMUError.migrationCancelled where transfer?.isCancelled ?? true {
            throw MigrationCancelled()
        } catch let error as QEMUError {
            switch error {
            case .invalidConfiguration(let reason): throw PanelError(.invalid, code: "invalid_configuration", message: reason)
            case .migrationBlocked: throw PanelError(.invalid, code: "not_migratable", message: error.description)
            case .transferInProgress: throw PanelError(.conflict, code: "guest_busy", message: error.description)
            default: throw PanelError(.conflict, code: "qemu_failed", message: error.description)
            }
        } catch let error as QMPError {
            throw PanelError(.conflict, code: "qemu_failed", message: "QEMU: \(error)")
        }
    }

    /// Whether the other end of `descriptor` has sent a line starting with `prefix` (looked at, not
    /// read). The destination's `WAIT`s before it (SwitchOverHeartbeat) are read and dropped: QEMU
    /// only writes to this connection, and the panel reads the verdict only after it.
    private static func peerHasSaid(_ prefix: String, on descriptor: Int32) -> Bool {
        let wait = Array("WAIT\n".utf8)
        var bytes = [UInt8](repeating: 0, count: max(prefix.utf8.count, wait.count))
        while true {
            let n = recv(descriptor, &bytes, bytes.count, Int32(MSG_PEEK | MSG_DONTWAIT))
            guard n == wait.count, Array(bytes[..<n]) == wait else { break }
            _ = recv(descriptor, &bytes, wait.count, Int32(MSG_DONTWAIT))
        }
        let n = recv(descriptor, &bytes, prefix.utf8.count, Int32(MSG_PEEK | MSG_DONTWAIT))
        return n == prefix.utf8.count && Array(bytes[..<n]) == Array(prefix.utf8)
    }

    /// QEMU sets the connection non-blocking (one open file description, shared with the panel's
    /// copy); the panel's own reads and writes after it want it blocking again.
    private static func setBlocking(_ descriptor: Int32) {
        let flags = fcntl(descriptor, F_GETFL)
        if flags >= 0, flags & O_NONBLOCK != 0 { _ = fcntl(descriptor, F_SETFL, flags & ~O_NONBLOCK) }
    }
}
