import Block
import Foundation
import Migration

/// A started (or about to be started) guest's machine, whatever runs it: the built-in core
/// (`BuiltinRuntime`) or a QEMU process (`QEMURuntime`). The services — lifecycle, snapshots,
/// managed save, both sides of a migration, the resource graphs — hold guests only through this,
/// so the order of their steps (record, then act; undo what cannot be recorded) is written once
/// for both backends. A runtime is made by its backend (`GuestBackend.makeRuntime`) without
/// running anything; then either `prepare()`, `load(fromFile:)` or `receive(from:)` gets it ready,
/// and `start(paused:)` runs it.
protocol GuestRuntime: AnyObject, Sendable {
    /// Makes a machine that loaded nothing ready to run, without running one instruction.
    func prepare() throws
    /// Runs the guest; with `paused` it is parked before its first instruction (a managed save of
    /// a paused guest, a restore into a paused one).
    func start(paused: Bool) throws
    func pause() throws
    func resume() throws
    /// Ends the machine for good. No exit report follows a stop.
    func stop()
    /// Gives the machine's own processes the least CPU priority (nice 19) before a stop nothing
    /// waits on: their exit, freeing the guest's memory, then yields to the work people wait for.
    func lowerPriority()
    /// As the reset button would.
    func reset() throws
    /// Console input; false when the guest has not read enough of what came before.
    func type(_ bytes: [UInt8]) -> Bool
    /// The machine still runs (started and not ended): its state is there to save or hand over.
    var isAlive: Bool { get }
    /// Whether its CPUs run right now, as the machine itself says; nil when it cannot say.
    var runsNow: Bool? { get }

    /// Loads a state file (snapshot or managed save) into a machine that has not run, checked
    /// against `expectedChecksum` while it loads. A failure leaves nothing running.
    func load(fromFile path: String, expectedChecksum: String?) throws
    /// Writes a snapshot to `path` while the guest runs; it pauses only for the switch-over and a
    /// running guest runs on afterwards, a paused one stays paused. `diskFreeze` swaps the disks'
    /// tops at the switch-over, so the frozen layers hold the disk of the state written.
    func saveSnapshot(
        to path: String, transfer: TransferControl, diskFreeze: DiskFreeze?,
        progress: @escaping @Sendable (TransferStats) -> Void
    ) throws -> SavedState
    /// Parks the guest and writes its state to `path` (the panel is stopping).
    func saveForShutdown(to path: String) throws -> SnapshotFile.Written
    /// The source side of a migration: the state goes over `socket` (the ticket already sent), and
    /// the guest is left parked at the end for the hand-over. `destinationReady` is called right
    /// before the first byte of state (what can be set up before it is). A cancel throws
    /// `MigrationCancelled`.
    func send(
        over socket: TCPSocket, transfer: TransferControl, diskFreeze: DiskFreeze?,
        destinationReady: () throws -> Void, progress: @escaping @Sendable (TransferStats) -> Void
    ) throws -> TransferStats
    /// The destination side: the stream from `socket` (after its ticket line) is loaded into a
    /// machine that never ran. `reading` is called once the machine reads the stream.
    func receive(from socket: TCPSocket, reading: () -> Void) throws

    /// Swaps the disks' tops for `freeze`'s new overlays between two instructions (a snapshot's
    /// or a migration's freeze). Only machines with disks (the built-in core's) are asked.
    func swapDisks(_ freeze: DiskFreeze) throws
    /// Plugs the files at `paths` in as the disks' tops, in drive order (a migration's destination,
    /// once the last layers arrived).
    func replaceDisks(with paths: [String]) throws
    /// Runs `body` on the image of drive `drive`'s top where the machine writes it (its CPU thread).
    func editDisk(_ drive: Int, _ body: @escaping @Sendable (QCOW2Image) throws -> Void) throws

    /// What the resource graphs read; `first` for a machine not sampled before (it sets up what
    /// later rounds read). Nil when the machine is gone.
    func counters(first: Bool, paused: Bool) -> RuntimeCounters?
}

/// A snapshot written by a runtime, with the transfer's final figures.
struct SavedState: Sendable {
    var file: SnapshotFile.Written
    var stats: TransferStats
}

/// One reading for the resource graphs.
struct RuntimeCounters: Sendable {
    /// Instructions retired so far; nil when the backend does not count them or did not look
    /// (a paused guest is not woken to say it retired nothing).
    var retired: UInt64?
    /// Pages written since the last reading.
    var dirtyPages: UInt64
    /// CPU time of what runs the guest (its CPU thread, its QEMU process), in clock ticks.
    var cpuTicks: UInt64?
    var rssBytes: UInt64
}

/// How a guest's machine ended on its own (never after `stop()`).
struct RuntimeExit: Sendable {
    /// The runtime whose machine ended; nil once nothing holds it (then it is registered nowhere).
    var runtime: (any GuestRuntime)?
    var reason: String
    var instructions: UInt64
}

/// What a runtime tells the panel about its guest, from threads of its own.
struct RuntimeReports: Sendable {
    /// The machine ended by itself (powered off, failed, crashed).
    var exited: @Sendable (RuntimeExit) -> Void
    /// The machine changed its run state by itself (QEMU's STOP and RESUME: a guest panic, an
    /// I/O error) — a hint to compare with the record, never the only way a change is noticed.
    var runStateChanged: @Sendable (_ runtime: any GuestRuntime) -> Void = { _ in }
    /// Something the backend reports that the panel passes on as an event (`guest.qemu`).
    var event: @Sendable (_ type: String, _ data: [String: JSON]) -> Void = { _, _ in }
}

/// Lets a machine's callbacks name the runtime they belong to, so a replaced machine's late report
/// can be told apart from the registered one's (set right after the runtime is built).
// @unchecked Sendable: written once before the machine runs, read after
final class RuntimeOwner: @unchecked Sendable {
    weak var runtime: (any GuestRuntime)?
}
