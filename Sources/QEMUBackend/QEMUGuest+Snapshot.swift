// Snapshots of QEMU guests as files, the way libvirt saves a domain: QEMU migrates into a
// descriptor the panel passed it (`getfd` + `migrate fd:` — no `exec:`, so no shell, and
// no `file:`, which QEMU 7.2 lacks), and the panel copies the stream into
// SnapshotFile.write: a temporary file beside the final name, SHA-256 computed behind
// the writer, fsync, rename — the same files and checksums as built-in snapshots.
// Restore starts a new QEMU that reads the file itself from its start (`-incoming fd:N`, the
// file's descriptor inherited: QEMU reads a regular file's descriptor as a file), while a
// thread of the panel checks the file against its checksum; the guest runs only once both passed.
import Foundation
import Migration
import Synchronization
import VMState

public struct QEMUSnapshotResult: Sendable {
    public var file: SnapshotFile.Written
    /// QEMU's query-migrate figures for the save (downtime = how long the guest was paused).
    public var stats: TransferStats
}

extension QEMUGuest {
    static let snapshotDescriptorName = "emupanel-snapshot"

    /// Saves the guest to `path`. A running guest keeps running while RAM is copied and is
    /// paused only for the last pages and the devices (`transfer.downtimeLimitMs`), then
    /// resumed (after `maxPasses` passes it is paused for the rest, see followMigration); a paused
    /// guest stays paused. Refused up front when QEMU reports a blocker.
    public func saveSnapshot(
        to path: String, transfer: TransferControl = TransferControl(downtimeLimitMs: 50),
        maxPasses: UInt64 = 30, timeout: Duration = .seconds(3600),
        progress: (TransferStats) -> Void = { _ in }
    ) throws
        -> QEMUSnapshotResult
    {
        try beginTransfer(transfer)
        defer { endTransfer() }
        let wasRunning = try runState() == "running"
        let (ours, theirs) = try UnixSocket.pair()
        defer { close(ours) }
        do {
            defer { close(theirs) }
            try qmp.execute("getfd", ["fdname": .string(Self.snapshotDescriptorName)], passing: theirs)
        }
        var stats = TransferStats()
        let written: SnapshotFile.Written
        do {
            written = try SnapshotFile.write(to: path) { sink in
                do {
                    try qmp.execute("migrate", ["uri": .string("fd:" + Self.snapshotDescriptorName)])
                } catch {
                    _ = try? qmp.execute("closefd", ["fdname": .string(Self.snapshotDescriptorName)])
                    throw error
                }
                stats = try copyStream(
                    from: ours, into: sink, transfer: transfer, maxPasses: maxPasses,
                    deadline: .now + timeout, progress: progress)
            }
        } catch {
            // QEMU ends its side (and resumes a guest it paused); the partial file is gone.
            try? cancelMigration()
            settleMigration()
            throw error
        }
        // After a completed save QEMU holds the guest in "postmigrate"; `cont` runs it again.
        if wasRunning { try resume() }
        return QEMUSnapshotResult(file: written, stats: stats)
    }

    /// Copies what QEMU writes into `sink` until QEMU closes its end, reporting query-migrate
    /// figures meanwhile; returns them once QEMU says the save completed. The copy runs on a
    /// thread of its own: QEMU's migration thread writes the last pages and the devices while
    /// holding the lock its monitor needs, so a monitor command issued while nobody drains the
    /// socket would wait for ever.
    private func copyStream(
        from socket: Int32, into sink: ByteSink, transfer: TransferControl, maxPasses: UInt64,
        deadline: ContinuousClock.Instant, progress: (TransferStats) -> Void
    ) throws -> TransferStats {
        let copier = StreamCopier(socket: socket, sink: sink)
        let stats: TransferStats
        do {
            stats = try followMigration(
                transfer: transfer, deadline: deadline, maxPasses: maxPasses,
                progress: progress, abandon: { copier.hasFailed })
        } catch {
            copier.abandon()
            // A failed write (a full disk) is the cause; QEMU's "cancelled" only the consequence.
            if let copyError = copier.finish() { throw copyError }
            throw error
        }
        if let copyError = copier.finish() { throw copyError }
        return stats
    }

    /// Starts a new QEMU for `configuration` and loads the snapshot at `path` into it (checked
    /// against `expectedSHA256` while it loads; a mismatch discards the new QEMU). The guest
    /// runs afterwards unless `paused`. On any failure no QEMU is left behind, and the error is
    /// QEMU's own reason for refusing the stream.
    public static func restore(
        _ configuration: QEMUGuestConfiguration, fromSnapshot path: String,
        expectedSHA256: String?, directory: String, logPath: String,
        events: QEMUGuestEvents = QEMUGuestEvents(), paused: Bool = false,
        timeout: Duration = .seconds(3600)
    ) throws -> QEMUGuest {
        // Checked from the start, beside QEMU's start-up and load (the page cache serves both).
        let check = expectedSHA256.map { ChecksumCheck(path: path, expected: $0) }
        do {
            let file = open(path, O_RDONLY | O_CLOEXEC)
            guard file >= 0 else { throw QEMUError.io(operation: "open \(path)", errno: errno) }
            let guest: QEMUGuest
            do {
                defer { close(file) }
                guest = try loadIncoming(
                    configuration, from: file, directory: directory, logPath: logPath, events: events,
                    deadline: .now + timeout)
            }
            do {
                try check?.result()
                if !paused { try guest.resume() }
                return guest
            } catch {
                guest.kill()
                throw error
            }
        } catch {
            // A damaged file is reported as damaged, even when the damage also made the load fail.
            if case .failure(let failure as SnapshotFileError) = check?.outcome(), failure.isChecksumMismatch { throw failure }
            throw error
        }
    }

    /// Starts QEMU reading incoming state from `descriptor` (a connection or a file) from its
    /// first moment, and waits until all of it has loaded: the guest is then paused. `started`
    /// runs once QEMU's main loop runs (it reads the stream from then on). A stream QEMU refused
    /// throws `incomingFailed` with its reason, and no QEMU is left.
    static func loadIncoming(
        _ configuration: QEMUGuestConfiguration, from descriptor: Int32, directory: String, logPath: String,
        events: QEMUGuestEvents, deadline: ContinuousClock.Instant, started: () -> Void = {}
    ) throws -> QEMUGuest {
        let guest: QEMUGuest
        do {
            guest = try launch(
                configuration, directory: directory, logPath: logPath, events: events, incoming: .descriptor(descriptor),
                started: started)
        } catch QEMUError.exited(let exit) {
            // The stream can end QEMU before its monitor answers.
            throw QEMUError.incomingFailed(reason: exit.reason.isEmpty ? "\(exit)" : exit.reason, exit: exit)
        }
        do {
            try guest.waitForIncoming(deadline: deadline)
            return guest
        } catch {
            guest.kill()
            throw error
        }
    }

    /// Waits until an incoming stream has loaded; QEMU's failure becomes `incomingFailed` with
    /// the reason from its stderr (QEMU 7.2 exits when a load fails).
    func waitForIncoming(deadline: ContinuousClock.Instant) throws {
        // QEMU reading from its start may have finished before the monitor was negotiated, and
        // events sent before that are dropped: its own account of the load, once.
        if let status = try? migrationStats().status, QEMUMigrationStatus.terminal.contains(status) {
            transferWatch.migrationStatus(status)
        }
        while true {
            let watched = transferWatch.wait(upTo: .milliseconds(500))
            if let exit = watched.exit {
                throw QEMUError.incomingFailed(reason: exit.reason.isEmpty ? "\(exit)" : exit.reason, exit: exit)
            }
            switch watched.status {
            case "completed":
                return
            case "failed":
                // The reason is on stderr; QEMU exits right after writing it.
                let exit = process.waitForExit(timeout: .seconds(10))
                let reason = exit?.reason ?? process.stderrSummary()
                throw QEMUError.incomingFailed(reason: reason.isEmpty ? "QEMU gave no reason" : reason, exit: exit)
            default:
                guard ContinuousClock.now < deadline else { throw QEMUError.timedOut("waiting for QEMU to load the stream") }
            }
        }
    }
}

/// Drains a socket into a sink on its own thread until the peer closes it.
// @unchecked Sendable: `sink` is touched only by the copy thread until `finish` has joined it
private final class StreamCopier: @unchecked Sendable {
    private let socket: Int32
    private let sink: ByteSink
    private let failure = Mutex<Error?>(nil)
    private let done = DispatchSemaphore(value: 0)

    init(socket: Int32, sink: ByteSink) {
        self.socket = socket
        self.sink = sink
        let thread = Thread { [self] in
            do { try copy() } catch { failure.withLock { $0 = error } }
            done.signal()
        }
        thread.name = "emupanel-qemu-snapshot"
        thread.start()
    }

    private func copy() throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        while true {
            let n = try UnixSocket.receive(socket, into: buffer)
            if n == 0 { return }
            try sink.write(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
        }
    }

    var hasFailed: Bool { failure.withLock { $0 != nil } }

    /// Ends the copy early (the transfer failed): the thread sees the end of the stream.
    func abandon() { shutdown(socket, Int32(SHUT_RD)) }

    /// Waits for the copy to reach the end of the stream; its error, if it had one. QEMU closes
    /// its end when the save is over; one that does not within a minute is given up on.
    func finish() -> Error? {
        if done.wait(timeout: .now() + 60) == .timedOut {
            abandon()
            done.wait()
            let copyError: Error? = failure.withLock { $0 }
            return copyError ?? QEMUError.timedOut("waiting for QEMU to close the snapshot stream")
        }
        return failure.withLock { $0 }
    }
}

/// A snapshot file's checksum, computed on a thread of its own while QEMU loads the file.
// @unchecked Sendable: `outcome` is written once by the thread before `done` is signalled, read after
private final class ChecksumCheck: @unchecked Sendable {
    private var value: Result<Void, Error> = .success(())
    private let done = DispatchSemaphore(value: 0)

    init(path: String, expected: String) {
        let thread = Thread { [self] in
            value = Result { try SnapshotFile.read(path, expectedChecksum: expected) { _ in } }
            done.signal()
        }
        thread.name = "snapshot checksum"
        thread.start()
    }

    /// Waits for the check; throws what it found.
    func result() throws { try outcome().get() }

    func outcome() -> Result<Void, Error> {
        done.wait()
        done.signal()  // later callers pass straight through
        return value
    }
}
