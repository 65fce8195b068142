import EmulatorCore
import Foundation
import RISCV
import Synchronization
import VMState

/// A guest machine on its own CPU thread, driven from other threads: start, pause, resume,
/// stop, reset, load a state before it runs, and stream its state while it runs (pre-copy
/// over the dirty bitmap) for snapshots and live migration.
public final class LiveMachine: @unchecked Sendable { // the VirtMachine is touched only on its CPU thread, or before start / while parked, handed over through RunControl's atomics
    public let machineType: MachineType
    public let control = RunControl()
    let machine: VirtMachine
    private let started = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let outcome = Mutex<RunOutcome?>(nil)
    private let retiredAtExit = Atomic<UInt64>(0)
    /// One transfer at a time: two would share (and reset) one dirty log.
    let transferring = Atomic<Bool>(false)
    private let onExit: @Sendable (RunOutcome) -> Void

    /// Builds and boots the machine (firmware/kernel loaded), not yet running.
    public init(options: RunOptions, machineType: MachineType, console: SerialConsole,
                onExit: @escaping @Sendable (RunOutcome) -> Void) throws {
        self.machineType = machineType
        machine = try HeadlessRunner.makeMachine(options)
        machine.console = console
        self.onExit = onExit
    }

    public func start() {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let handle = MachineHandle(machine)
        let thread = Thread { [self] in
            let exit = handle.machine.run(control: control)
            retiredAtExit.store(handle.machine.hart.state.retired, ordering: .releasing)
            let result = RunOutcome(exit)
            outcome.withLock { $0 = result }
            finished.signal()
            if result != .stopped { onExit(result) }
        }
        thread.name = "emupanel-cpu0"
        thread.stackSize = 8 << 20
        thread.start()
    }

    public var isRunning: Bool { started.load(ordering: .acquiring) && outcome.withLock { $0 == nil } }

    /// Parks the CPU between slices; returns once it is parked.
    public func pause() {
        control.pause()
        guard isRunning else { return }
        while !control.isPaused && isRunning { usleep(100) }
    }

    public func resume() { control.resume() }

    /// Stops the CPU thread and waits for it.
    public func stop() {
        control.stop()
        guard started.load(ordering: .acquiring) else { return }
        finished.wait()
        finished.signal()
    }

    /// Power-cycles the board (RAM cleared, images reloaded), as the finisher's reset does.
    public func reset() throws {
        try onCPU { try $0.reset() }
    }

    /// Runs `body` with the machine on the CPU thread (or directly when it is not running).
    public func onCPU<T: Sendable>(_ body: @escaping @Sendable (VirtMachine) throws -> T) throws -> T {
        guard isRunning else { return try body(machine) }
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<T, any Error>?>(nil)
        control.perform { machine in
            result.withLock { $0 = Result { try body(machine) } }
            done.signal()
        }
        while done.wait(timeout: .now() + 0.05) == .timedOut {
            if !isRunning, result.withLock({ $0 == nil }) {
                throw LiveMachineError.notRunning
            }
        }
        return try result.withLock { $0! }.get()
    }

    // MARK: Loading (before start)

    /// Replaces RAM and device state from a snapshot file; every device section is checked
    /// against this machine before any RAM is touched, and the file against its checksum.
    public func load(fromFile path: String, expectedChecksum: String? = nil) throws {
        precondition(!started.load(ordering: .acquiring), "load before start")
        try HeadlessSession.load(path, into: machine, as: machineType, expectedChecksum: expectedChecksum)
    }

    /// Replaces RAM and device state from a stream (incoming migration). A failure may leave RAM
    /// half-written, so the caller discards this machine on error; it never ran.
    public func load(from source: ByteSource) throws -> RAMTransferStats {
        precondition(!started.load(ordering: .acquiring), "load before start")
        return try machine.loadState(from: source, as: machineType)
    }

    /// Instructions retired so far, or in all once the guest has ended.
    public var instructionsRetired: UInt64 {
        if started.load(ordering: .acquiring), !isRunning { return retiredAtExit.load(ordering: .acquiring) }
        return (try? onCPU { $0.hart.state.retired }) ?? 0
    }
}

public enum LiveMachineError: Error, CustomStringConvertible {
    case notRunning
    case transferInProgress

    public var description: String {
        switch self {
        case .notRunning: return "the guest's CPU thread is not running"
        case .transferInProgress: return "another snapshot or migration of this guest is streaming its state"
        }
    }
}
