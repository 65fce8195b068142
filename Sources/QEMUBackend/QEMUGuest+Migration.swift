// Outgoing live migration of a QEMU guest to a destination QEMU listening on `tcp:`
// (QEMUIncomingMigration on the other host). QEMU does the pre-copy; the panel sets
// downtime limit and bandwidth, follows progress, tunes or cancels mid-flight. On
// `completed` the source QEMU holds the guest paused ("postmigrate"): the caller stops it
// once the destination confirms it runs there, or resumes it if the destination failed —
// which only the destination can tell (this side sees a broken pipe at best).
import Foundation
import Migration

extension QEMUGuest {
    /// Migrates to the QEMU listening at `host`:`port`; returns the final figures once QEMU
    /// reports `completed`. A failed or cancelled migration leaves the guest running as before
    /// (QEMU resumes it) and throws `migrationFailed` / `migrationCancelled`. After `maxPasses`
    /// passes the guest is paused for the rest, as for snapshots.
    public func migrate(
        toHost host: String, port: UInt16, transfer: TransferControl = TransferControl(),
        maxPasses: UInt64 = 30, timeout: Duration? = nil,
        progress: (TransferStats) -> Void = { _ in }
    ) throws -> TransferStats {
        let uri = try Self.tcpURI(host: host, port: port)
        try beginTransfer(transfer)
        defer { endTransfer() }
        do {
            try qmp.execute("migrate", ["uri": .string(uri)])
            return try followMigration(
                transfer: transfer, deadline: timeout.map { .now + $0 }, maxPasses: maxPasses,
                progress: progress)
        } catch {
            settleMigration()
            throw error
        }
    }

    /// Migrates over a connection the caller opened (a socket to a destination that already checked
    /// the caller's ticket): QEMU gets it with `getfd` and writes its stream there (`migrate fd:`), so
    /// no port is opened for QEMU and the caller keeps its own copy of the connection to talk to the
    /// destination before and after. `beforeStreaming` runs once QEMU is set up and holds the
    /// connection, right before `migrate` (the caller waits there for a destination to be ready).
    /// `abandon` returning true cancels (the destination said it failed). Otherwise as
    /// `migrate(toHost:port:)`: the guest is left in `postmigrate` on `completed`, running as
    /// before on a failure or cancel.
    public func migrate(
        over descriptor: Int32, transfer: TransferControl = TransferControl(), maxPasses: UInt64 = 30,
        timeout: Duration? = nil, beforeStreaming: () throws -> Void = {}, progress: (TransferStats) -> Void = { _ in },
        abandon: () -> Bool = { false }
    ) throws -> TransferStats {
        try beginTransfer(transfer)
        defer { endTransfer() }
        try qmp.execute("getfd", ["fdname": .string(Self.migrationDescriptorName)], passing: descriptor)
        do {
            try beforeStreaming()
            try qmp.execute("migrate", ["uri": .string("fd:" + Self.migrationDescriptorName)])
        } catch {
            _ = try? qmp.execute("closefd", ["fdname": .string(Self.migrationDescriptorName)])
            throw error
        }
        do {
            return try followMigration(
                transfer: transfer, deadline: timeout.map { .now + $0 }, maxPasses: maxPasses,
                progress: progress, abandon: abandon)
        } catch {
            settleMigration()
            throw error
        }
    }

    static let migrationDescriptorName = "emupanel-migration"

    /// `tcp:HOST:PORT`, with brackets around an IPv6 literal; only a literal address or a plain
    /// host name, since the URI is parsed by QEMU.
    static func tcpURI(host: String, port: UInt16) throws -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: ".-:"))
        guard !host.isEmpty, host.unicodeScalars.allSatisfy({ $0.isASCII && allowed.contains($0) }) else {
            throw QEMUError.invalidConfiguration("'\(host)' is not a host QEMU can migrate to")
        }
        return host.contains(":") ? "tcp:[\(host)]:\(port)" : "tcp:\(host):\(port)"
    }
}
