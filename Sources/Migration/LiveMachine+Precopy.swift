import EmulatorCore
import RISCV
import VMState

extension LiveMachine {
    /// Streams RAM and device state to `sink` by pre-copy (`Precopy`): a running guest keeps
    /// running while RAM goes out in passes, throttled if passes do not shrink, until what is left
    /// fits the downtime limit; then it is parked for the last pages and the devices. Returns with
    /// the guest parked when `parkedGuest` says so — the caller resumes it (snapshot) or hands it
    /// over (migration); `Precopy.snapshot` lets it run on by itself when it can. On error the
    /// guest is resumed if this call parked it. `atSwitchOver` runs on the CPU thread with the
    /// guest parked, right before its last state is taken: a change made there (a disk overlay
    /// frozen) is exactly as old as the state streamed; an error there fails the stream.
    public func streamState(
        to sink: ByteSink, transfer: TransferControl, precopy: Precopy = Precopy(),
        atSwitchOver: (@Sendable (VirtMachine) throws -> Void)? = nil,
        progress: (TransferStats) -> Void
    ) throws -> TransferStats {
        guard !transferring.exchange(true, ordering: .acquiringAndReleasing) else { throw LiveMachineError.transferInProgress }
        defer { transferring.store(false, ordering: .releasing) }
        return try precopy.run(StreamedLiveMachine(self, atSwitchOver: atSwitchOver), to: sink, transfer: transfer, progress: progress)
    }
}

/// A LiveMachine as pre-copy drives it: the dirty log and the populated pages are read on its
/// CPU thread, the switch-over parks it, auto-converge throttles it.
final class StreamedLiveMachine: StreamedMachine {
    private let live: LiveMachine
    private let throttle: CPUThrottle
    private let atSwitchOver: (@Sendable (VirtMachine) throws -> Void)?

    init(_ live: LiveMachine, atSwitchOver: (@Sendable (VirtMachine) throws -> Void)? = nil) {
        self.live = live
        self.atSwitchOver = atSwitchOver
        throttle = CPUThrottle(live)
    }

    var isGuestRunning: Bool { live.isRunning && !live.control.isPaused }

    func beginStream(to sink: ByteSink) throws -> (stream: PrecopyStream, firstPass: RAMPageBitmap) {
        let type = live.machineType
        // Logging starts before the populated pages are read, so a page is either populated
        // already (first pass) or written later (dirty log); pages never populated are zero
        // and the loading side starts from zeroed RAM.
        let (state, populated) = try live.onCPU { machine -> (MachineStateBox, RAMPageBitmap) in
            machine.setDirtyLogging(true)
            return (MachineStateBox(try machine.machineState(for: type)), machine.populatedPages())
        }
        do {
            return (try state.value.startMigration(to: sink), populated)
        } catch {
            endStream()
            throw error
        }
    }

    func syncDirtyLog() throws -> RAMPageBitmap {
        try throttle.onCPU { $0.takeDirtyPages() }
    }

    func pauseGuest() {
        // The park is asked for before the throttle is lifted: a vCPU woken from its sleep parks at
        // once instead of running a slice at full speed (a hot guest dirties 100 MiB in 10 ms).
        live.control.pause()
        throttle.set(percentage: 0)
        live.pause()
    }

    func resumeGuest() { live.resume() }

    func throttleCPU(percentage: Double) { throttle.set(percentage: percentage) }

    func willComplete() throws {
        guard let atSwitchOver else { return }
        try live.onCPU(atSwitchOver)
    }

    func endStream() {
        throttle.stop()
        _ = try? live.onCPU { $0.setDirtyLogging(false) }
    }
}

extension OutgoingMigration: PrecopyStream {
    public var ramBytes: UInt64 { UInt64(ramPageCount * QEMUFileFormat.targetPageSize) }
}

/// Carries a MachineState off the CPU thread; it is used only while the transfer runs.
// @unchecked Sendable: built on the CPU thread, then used by the one transfer thread; device reads happen while parked
final class MachineStateBox: @unchecked Sendable {
    let value: MachineState
    init(_ value: MachineState) { self.value = value }
}
