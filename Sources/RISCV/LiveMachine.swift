// The one way a machine runs: on a CPU thread of its own (never Swift's cooperative pool),
// driven from other threads through RunControl. The panel's guests, `emupanel run` and the tests
// all use it; snapshots and live migration extend it (Migration: streamState, load(fromFile:)).
import EmulatorCore
import Foundation
import Synchronization
import VMState

/// How a machine's run ended.
public enum RunOutcome: Sendable, Equatable {
    case passed
    case failed(code: UInt32)
    case instructionLimit
    case stopped

    /// How a finished `VirtMachine.run` reads to its caller.
    public init(_ exit: RunExit) {
        switch exit {
        case .finisherPass: self = .passed
        case .finisherFail(let code): self = .failed(code: code)
        case .instructionLimit: self = .instructionLimit
        case .stopped: self = .stopped
        }
    }
}

/// A machine on its own CPU thread: start, pause, resume, stop, reset, run code on the CPU thread
/// (`onCPU`), load a state before it runs, and wait for its end.
public final class LiveMachine: @unchecked Sendable {  // the VirtMachine is touched only on its CPU thread, or before start / while parked, handed over through RunControl's atomics
    public let machineType: MachineType
    public let control: RunControl
    package let machine: VirtMachine
    private let started = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let outcome = Mutex<RunOutcome?>(nil)
    private let retiredAtExit = Atomic<UInt64>(0)
    private let nanosecondsRun = Atomic<UInt64>(0)
    /// One transfer at a time: two would share (and reset) one dirty log.
    package let transferring = Atomic<Bool>(false)
    private let onExit: @Sendable (RunOutcome) -> Void

    /// Takes a built (and booted) machine; `onExit` hears how it ended unless `stop()` ended it.
    public init(_ machine: VirtMachine, control: RunControl = RunControl(), onExit: @escaping @Sendable (RunOutcome) -> Void = { _ in }) {
        machineType = machine.machineType
        self.machine = machine
        self.control = control
        self.onExit = onExit
    }

    /// Starts the CPU thread; with `maxInstructions` it ends once that many have retired in all.
    public func start(maxInstructions: UInt64? = nil) {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let handle = MachineHandle(machine)
        let thread = Thread { [self] in
            let begin = DispatchTime.now().uptimeNanoseconds
            let exit = handle.machine.run(maxInstructions: maxInstructions, control: control)
            nanosecondsRun.store(DispatchTime.now().uptimeNanoseconds - begin, ordering: .relaxed)
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

    /// How it ended; nil while it runs or before it started.
    public var result: RunOutcome? { outcome.withLock { $0 } }

    /// Blocks until the CPU thread has ended, and says how.
    public func wait() -> RunOutcome {
        guard started.load(ordering: .acquiring) else { return .stopped }
        finished.wait()
        finished.signal()
        return outcome.withLock { $0 } ?? .stopped
    }

    /// Parks the CPU between slices; returns once it is parked.
    public func pause() {
        control.pause()
        guard isRunning else { return }
        control.waitUntilParked()
    }

    public func resume() { control.resume() }

    /// Stops the CPU thread and waits for it.
    public func stop() {
        control.stop()
        _ = wait()
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

    /// Replaces RAM and device state from a stream (incoming migration). A failure may leave RAM
    /// half-written, so the caller discards this machine on error; it never ran.
    public func load(from source: ByteSource) throws -> RAMTransferStats {
        precondition(!started.load(ordering: .acquiring), "load before start")
        return try machine.loadState(from: source, as: machineType)
    }

    /// Before start only: the machine itself, for loading a state into it.
    package func withMachineBeforeStart<T>(_ body: (VirtMachine) throws -> T) rethrows -> T {
        precondition(!started.load(ordering: .acquiring), "load before start")
        return try body(machine)
    }

    /// Instructions retired so far, or in all once the machine has ended.
    public var instructionsRetired: UInt64 {
        if started.load(ordering: .acquiring), !isRunning { return retiredAtExit.load(ordering: .acquiring) }
        return (try? onCPU { $0.hart.state.retired }) ?? 0
    }

    /// Wall-clock seconds the CPU thread ran (once it has ended).
    public var runSeconds: Double { Double(nanosecondsRun.load(ordering: .relaxed)) / 1e9 }
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

/// Hands a machine to the CPU thread; only that thread touches it until it is joined.
final class MachineHandle: @unchecked Sendable {  // ownership passes to the CPU thread and back at join
    let machine: VirtMachine
    init(_ machine: VirtMachine) { self.machine = machine }
}
