// What can go wrong between the panel and a QEMU process, each with a message a person
// can act on. QEMU's own words (its stderr, its QMP error descriptions) are carried
// through unchanged: they name the device and the reason better than we could.
import Foundation

public enum QEMUError: Error, CustomStringConvertible, Sendable {
    /// The QEMU binary could not be started at all.
    case launchFailed(binary: String, reason: String)
    /// QEMU ended while something waited on it; `exit` says how and why (its stderr).
    case exited(QEMUExit)
    /// A configuration QEMU must never be started with (bad name, missing file).
    case invalidConfiguration(String)
    /// QEMU reports migration blockers: snapshot and migrate are refused up front.
    case migrationBlocked([QEMUMigrationBlocker])
    /// An outgoing migration or snapshot failed; `reason` is QEMU's error-desc.
    case migrationFailed(reason: String)
    case migrationCancelled
    /// The destination QEMU failed to load the stream: its own reason, from its stderr.
    case incomingFailed(reason: String, exit: QEMUExit?)
    /// A wait that had a deadline passed it.
    case timedOut(String)
    /// A second transfer was asked for while one runs (QEMU runs one migration at a time).
    case transferInProgress
    case io(operation: String, errno: Int32)

    public var description: String {
        switch self {
        case .launchFailed(let binary, let reason): return "cannot start \(binary): \(reason)"
        case .exited(let exit): return "QEMU \(exit)"
        case .invalidConfiguration(let reason): return reason
        case .migrationBlocked(let blockers):
            return "QEMU refuses to migrate this guest: " + blockers.map(\.description).joined(separator: "; ")
        case .migrationFailed(let reason): return "migration failed: \(reason)"
        case .migrationCancelled: return "migration cancelled"
        case .incomingFailed(let reason, _): return "the destination QEMU failed: \(reason)"
        case .timedOut(let what): return "timed out \(what)"
        case .transferInProgress: return "a snapshot or migration of this guest is already running"
        case .io(let operation, let code): return "\(operation): \(String(cString: strerror(code)))"
        }
    }
}
