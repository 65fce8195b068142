// The receiving side of a live migration: a QEMU started with `-S` (so it never runs on its
// own) that reads the stream either from a connection the panel accepted (`receive`, what the
// panel does) or by listening with `migrate-incoming tcp:` on a port it chose (`listen`). When
// the load fails QEMU exits with its reason on stderr; this side reads it back and reports it,
// so the source can be told why — the piece QEMU alone lacks.
import Foundation

public final class QEMUIncomingMigration: Sendable {
    public let guest: QEMUGuest
    /// Where the source must connect.
    public let host: String
    public let port: UInt16

    private init(guest: QEMUGuest, host: String, port: UInt16) {
        self.guest = guest
        self.host = host
        self.port = port
    }

    /// Starts QEMU for `configuration` and listens on `host`:`port` (0: a free port, which
    /// `port` then tells). The guest's events and its exit go to `events` as for any guest.
    public static func listen(
        _ configuration: QEMUGuestConfiguration, directory: String, logPath: String,
        host: String = "127.0.0.1", port: UInt16 = 0,
        events: QEMUGuestEvents = QEMUGuestEvents()
    ) throws -> QEMUIncomingMigration {
        let uri = try QEMUGuest.tcpURI(host: host, port: port)
        let guest = try QEMUGuest.launch(
            configuration, directory: directory, logPath: logPath, events: events,
            incoming: .deferred)
        do {
            try guest.qmp.execute("migrate-incoming", ["uri": .string(uri)])
            // query-migrate on an incoming QEMU lists the addresses it listens on (QEMU ≥ 4.0).
            let addresses = try guest.qmp.execute("query-migrate")["socket-address"]?.arrayValue ?? []
            let listening = addresses.compactMap { $0["port"]?.stringValue.flatMap { UInt16($0) } }.first
            guard let chosen = port != 0 ? port : listening else {
                throw QEMUError.migrationFailed(reason: "QEMU did not say which port it listens on")
            }
            return QEMUIncomingMigration(guest: guest, host: host, port: chosen)
        } catch {
            guest.kill()
            throw error
        }
    }

    /// Waits until the whole stream has loaded; the guest is then paused, ready for
    /// `guest.resume()` once the source has handed over. A load QEMU refused throws
    /// `incomingFailed` with QEMU's reason and exit status; the QEMU is gone then.
    public func waitForCompletion(timeout: Duration = .seconds(3600)) throws -> QEMUGuest {
        do {
            try guest.waitForIncoming(deadline: .now + timeout)
            return guest
        } catch {
            guest.kill()
            throw error
        }
    }

    /// Why the load failed, once it has (nil while it runs or after it succeeded).
    public var failure: QEMUError? {
        let watched = guest.transferWatch.current
        // The process's own record first: the watch learns of the exit a moment later, on the
        // thread that reaped it, after a waiter may already have been woken.
        if let exit = guest.process.exit ?? watched.exit, watched.status != "completed" {
            return .incomingFailed(reason: exit.reason.isEmpty ? "\(exit)" : exit.reason, exit: exit)
        }
        return nil
    }

    /// Gives up on the incoming guest: its QEMU is ended.
    public func cancel() { guest.kill() }

    /// Loads a stream from a connection the caller accepted (and checked the ticket on) into a
    /// new QEMU for `configuration`, which reads it from its start (`-incoming fd:N`): no port is
    /// ever open for QEMU, and no monitor round trip stands between its start-up and the stream.
    /// `started` is called once QEMU's main loop runs (it reads the stream from then on). Returns
    /// once the whole stream loaded, the guest paused; a stream QEMU refused throws
    /// `incomingFailed` with QEMU's reason and exit status, and no QEMU is left.
    public static func receive(
        _ configuration: QEMUGuestConfiguration, from descriptor: Int32, directory: String, logPath: String,
        events: QEMUGuestEvents = QEMUGuestEvents(), timeout: Duration = .seconds(3600),
        started: () -> Void = {}
    ) throws -> QEMUGuest {
        try QEMUGuest.loadIncoming(
            configuration, from: descriptor, directory: directory, logPath: logPath, events: events,
            deadline: .now + timeout, started: started)
    }
}
