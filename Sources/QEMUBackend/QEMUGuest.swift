// A QEMU guest the panel drives: one QEMU process started paused in the guest's
// directory (stderr to the guest's log), its QMP monitor, and its serial console.
// Lifecycle goes through QMP (`cont`, `stop`, `system_reset`, `quit`); what QEMU does on
// its own — SHUTDOWN, RESET, STOP, RESUME, MIGRATION events, and the process ending —
// reaches the panel through `QEMUGuestEvents`. Snapshots and migrations are in the
// extensions beside this file.
import Foundation
import Synchronization

/// What QEMU reports about a guest, in QEMU's terms.
public enum QEMUGuestEvent: Sendable, Equatable {
    /// SHUTDOWN: the guest powered off (`guestInitiated`) or the host asked (`quit`); QEMU's
    /// reason ("guest-shutdown", "host-qmp-quit", …).
    case shutdown(guestInitiated: Bool, reason: String)
    /// RESET: the guest reset itself, or `system_reset` did.
    case reset(guestInitiated: Bool, reason: String)
    /// STOP: the vCPUs stopped (`stop`, the end of a migration).
    case stop
    /// RESUME: the vCPUs run again.
    case resume
    /// MIGRATION: a snapshot or migration changed status (setup, active, completed, failed, …).
    case migration(status: String)
    /// Anything else QEMU sends, as it sent it.
    case other(QMPEvent)
}

/// Where a guest's output and events go. Every callback may be called from a thread of
/// the backend's own; none may block for long.
public struct QEMUGuestEvents: Sendable {
    /// Bytes the guest wrote to its serial port.
    public var console: @Sendable ([UInt8]) -> Void
    /// QEMU's events, in the order QEMU sent them.
    public var event: @Sendable (QEMUGuestEvent) -> Void
    /// The QEMU process ended (after `quit`, a guest power-off, or a crash), with its stderr.
    public var exited: @Sendable (QEMUExit) -> Void

    public init(
        console: @escaping @Sendable ([UInt8]) -> Void = { _ in },
        event: @escaping @Sendable (QEMUGuestEvent) -> Void = { _ in },
        exited: @escaping @Sendable (QEMUExit) -> Void = { _ in }
    ) {
        self.console = console
        self.event = event
        self.exited = exited
    }
}

public final class QEMUGuest: Sendable {
    public let configuration: QEMUGuestConfiguration
    public let directory: String
    /// The QEMU that runs this guest and its monitor.
    let instance: QEMUInstance
    let console: QEMUConsole
    /// MIGRATION status changes and the process's end, for the transfer code to wait on.
    let transferWatch: TransferWatch
    /// QEMU runs one migration at a time; so does a guest.
    let transferring = Atomic<Bool>(false)

    public var process: QEMUProcess { instance.process }
    public var qmp: QMPClient { instance.qmp }
    public var version: QEMUVersion { instance.qmp.version }

    /// The monitor socket (a panel that restarts could reconnect there) and the console socket.
    public static let monitorSocketName = "qmp.sock"
    public static let consoleSocketName = "console.sock"

    /// Starts QEMU for `configuration` in `directory` (created if needed), appending its
    /// stderr to `logPath`. The guest runs unless `paused`; QEMU itself always starts with
    /// `-S`, so not one instruction runs before the console is connected.
    public static func start(
        _ configuration: QEMUGuestConfiguration, directory: String, logPath: String,
        events: QEMUGuestEvents = QEMUGuestEvents(), paused: Bool = false
    ) throws -> QEMUGuest {
        let guest = try launch(configuration, directory: directory, logPath: logPath, events: events, incoming: nil)
        if !paused {
            do { try guest.resume() } catch {
                guest.kill()
                throw error
            }
        }
        return guest
    }

    /// Starts the QEMU process and connects monitor and console; `started` runs once QEMU's main
    /// loop runs (its monitor greeted), before the monitor is negotiated.
    static func launch(
        _ configuration: QEMUGuestConfiguration, directory: String, logPath: String,
        events: QEMUGuestEvents, incoming: QEMUIncoming?, started: () -> Void = {}
    ) throws -> QEMUGuest {
        try QEMUCommandLine.validate(configuration)
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        let consolePath = directory + "/" + consoleSocketName
        let consoleListening = try UnixSocket.listen(at: consolePath)
        let consoleIdentity = UnixSocket.identity(ofSocketAt: consolePath)
        let consoleClient: Int32
        do { consoleClient = try UnixSocket.connect(to: consolePath) } catch {
            close(consoleListening)
            unlink(consolePath)
            throw error
        }
        let console = QEMUConsole(socket: consoleClient, output: events.console)
        // From here the listening socket belongs to the command line, which QEMUInstance closes.
        let line: QEMUCommandLine
        do { line = try QEMUCommandLine.guest(configuration, console: consoleListening, incoming: incoming) } catch {
            console.close()
            close(consoleListening)
            unlink(consolePath)
            throw error
        }
        let watch = TransferWatch()
        let monitorPath = directory + "/" + monitorSocketName
        let monitorIdentity = Mutex<(dev_t, ino_t)?>(nil)
        let instance: QEMUInstance
        do {
            instance = try QEMUInstance.launch(
                line, directory: directory, logPath: logPath, monitorPath: monitorPath, onGreeting: started,
                onEvent: { event in
                    let translated = QEMUGuestEvent(event)
                    if case .migration(let status) = translated { watch.migrationStatus(status) }
                    events.event(translated)
                },
                onExit: { exit in
                    watch.processExited(exit)
                    UnixSocket.unlink(monitorPath, ifStill: monitorIdentity.withLock { $0 })
                    UnixSocket.unlink(consolePath, ifStill: consoleIdentity)
                    events.exited(exit)
                })
        } catch {
            console.close()
            unlink(consolePath)
            throw error
        }
        monitorIdentity.withLock { $0 = instance.monitorIdentity }
        // A QEMU that already ended ran its exit handler before the identity was known.
        if instance.process.exit != nil { UnixSocket.unlink(monitorPath, ifStill: instance.monitorIdentity) }
        return QEMUGuest(
            configuration: configuration, directory: directory, instance: instance, console: console,
            transferWatch: watch)
    }

    private init(
        configuration: QEMUGuestConfiguration, directory: String, instance: QEMUInstance, console: QEMUConsole,
        transferWatch: TransferWatch
    ) {
        self.configuration = configuration
        self.directory = directory
        self.instance = instance
        self.console = console
        self.transferWatch = transferWatch
    }

    // MARK: Lifecycle (QMP)

    /// `cont`: runs the vCPUs (from paused, or after a snapshot or a failed migration).
    public func resume() throws { try qmp.execute("cont") }

    /// `stop`: pauses the vCPUs.
    public func pause() throws { try qmp.execute("stop") }

    /// `system_reset`: resets the machine as its reset button would.
    public func reset() throws { try qmp.execute("system_reset") }

    /// `query-status`: QEMU's run state ("running", "paused", "postmigrate", "inmigrate", …).
    public func runState() throws -> String { try qmp.execute("query-status")["status"]?.stringValue ?? "unknown" }

    /// `quit`: QEMU ends at once, like pulling the plug (a guest that should shut down cleanly
    /// gets its own power-off first). Waits for the process; kills it if it lingers.
    @discardableResult
    public func stop(timeout: Duration = .seconds(10)) -> QEMUExit {
        let exit = instance.quit(timeout: timeout)
        console.close()
        return exit
    }

    /// Ends QEMU without asking (SIGKILL), for a QEMU that no longer answers.
    @discardableResult
    public func kill() -> QEMUExit {
        instance.process.kill()
        let exit =
            instance.process.waitForExit(timeout: .seconds(30))
            ?? QEMUExit(status: nil, signal: SIGKILL, reason: "")
        instance.qmp.close()
        console.close()
        return exit
    }

    // MARK: Console

    /// Types `bytes` on the guest's serial port.
    public func sendConsole(_ bytes: [UInt8]) throws { try console.send(bytes) }

    // MARK: Blockers

    /// What QEMU says keeps this guest from migrating now (`blocked-reasons`), empty if nothing.
    public func migrationBlockers() throws -> [QEMUMigrationBlocker] {
        (try qmp.execute("query-migrate")["blocked-reasons"]?.arrayValue ?? [])
            .compactMap(\.stringValue).map(QEMUMigrationBlocker.init(qemuReason:))
    }
}

extension QEMUGuestEvent {
    init(_ event: QMPEvent) {
        let guestInitiated = event.data["guest"]?.boolValue ?? false
        let reason = event.data["reason"]?.stringValue ?? ""
        switch event.name {
        case "SHUTDOWN": self = .shutdown(guestInitiated: guestInitiated, reason: reason)
        case "RESET": self = .reset(guestInitiated: guestInitiated, reason: reason)
        case "STOP": self = .stop
        case "RESUME": self = .resume
        case "MIGRATION": self = .migration(status: event.data["status"]?.stringValue ?? "")
        default: self = .other(event)
        }
    }
}

/// The latest MIGRATION status and whether QEMU ended, with a wake-up on each change.
final class TransferWatch: Sendable {
    struct Snapshot {
        var status: String?
        var exit: QEMUExit?
    }
    private let state = Mutex(Snapshot())
    private let changed = DispatchSemaphore(value: 0)

    func migrationStatus(_ status: String) {
        state.withLock { $0.status = status }
        changed.signal()
    }

    func processExited(_ exit: QEMUExit) {
        state.withLock { $0.exit = exit }
        changed.signal()
    }

    /// Forgets the last status, before a new transfer starts.
    func reset() { state.withLock { $0.status = nil } }

    var current: Snapshot { state.withLock { $0 } }

    /// Waits for a change or `interval`, whichever comes first; returns the state then.
    func wait(upTo interval: Duration) -> Snapshot {
        _ = changed.wait(timeout: .now() + interval.seconds)
        return current
    }
}
