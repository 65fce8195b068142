import Block
import EmulatorCore
import Foundation
import Migration
import RISCV
import Synchronization

/// A guest on the built-in RISC-V core: its `LiveMachine` (the board on its own CPU thread) and
/// the serial line between its UART and the console buffer.
final class BuiltinRuntime: GuestRuntime {
    let machine: LiveMachine
    let serial: SerialConsole
    /// The CPU thread's kernel id, read on that thread at the first metrics round.
    private let cpuThread = Mutex<Int32?>(nil)

    /// `drives` are the guest's disks, top overlays first in drive order (GuestDiskFiles.drives).
    init(
        guest: GuestRecord, image: ImageCatalog.Image, machineType: MachineType, drives: [DriveConfiguration],
        console: ConsoleBuffer, reports: RuntimeReports
    ) throws {
        serial = SerialConsole { console.append($0) }
        let board = try VirtMachine.booted(
            machineType,
            configuration: MachineConfiguration(
                memoryMiB: guest.memoryMiB, clock: guest.icount ? .defaultICount : .realtime, drives: drives),
            firmware: image.biosPath, kernel: image.kernelPath, initrd: image.initrdPath, commandLine: image.commandLine)
        board.console = serial
        let owner = RuntimeOwner()
        machine = LiveMachine(board) { outcome in
            let runtime = owner.runtime as? BuiltinRuntime
            reports.exited(
                RuntimeExit(
                    runtime: runtime, reason: Self.reason(outcome),
                    instructions: runtime?.machine.instructionsRetired ?? 0))
        }
        owner.runtime = self
    }

    private static func reason(_ outcome: RunOutcome) -> String {
        switch outcome {
        case .passed: "powered off"
        case .failed(let code): "test finisher reported failure \(code)"
        case .instructionLimit: "instruction limit"
        case .stopped: "stopped"
        }
    }

    /// The board is built and loaded when the runtime is made.
    func prepare() {}

    func start(paused: Bool) {
        if paused { machine.control.pause() }
        machine.start()
    }

    func pause() { machine.pause() }
    func resume() { machine.resume() }
    func stop() { machine.stop() }
    /// The machine has no process of its own: its memory is freed by the panel's thread that stops it.
    func lowerPriority() {}
    func reset() throws { try machine.reset() }
    /// False when the guest has not read enough of the input before it (SerialConsole.inputCapacity).
    func type(_ bytes: [UInt8]) -> Bool { serial.send(bytes) }
    var isAlive: Bool { machine.isRunning }
    var runsNow: Bool? { machine.isRunning ? !machine.control.isPaused : nil }

    func load(fromFile path: String, expectedChecksum: String?) throws {
        try machine.load(fromFile: path, expectedChecksum: expectedChecksum)
    }

    func saveSnapshot(
        to path: String, transfer: TransferControl, diskFreeze: DiskFreeze?,
        progress: @escaping @Sendable (TransferStats) -> Void
    ) throws -> SavedState {
        var final = TransferStats()
        // A paused guest stays paused while a task runs (pause and resume wait for it): its RAM
        // cannot change under the writer, so the file is hashed on the way.
        let paused = !machine.isRunning || machine.control.isPaused
        let written = try SnapshotFile.write(to: path, unchangingSource: paused) { sink in
            let throttled = ThrottledSink(sink, transfer: transfer)
            let stats = try machine.streamState(
                to: throttled, transfer: transfer, precopy: .snapshot, atSwitchOver: Self.swapping(diskFreeze), progress: progress)
            final = stats
            // A guest that powered off meanwhile left only its last moment: no snapshot to keep.
            guard machine.isRunning else { throw GuestEnded(during: "snapshot") }
            // A running guest ran on once its last state was held in memory (Precopy.snapshot), unless
            // there was too much to hold: then it is parked until here. One that was paused stays paused.
            if stats.parkedGuest { machine.resume() }
        }
        return SavedState(file: written, stats: final)
    }

    func saveForShutdown(to path: String) throws -> SnapshotFile.Written {
        machine.pause()
        let transfer = TransferControl()
        // Paused first, so its RAM cannot change under the writer.
        return try SnapshotFile.write(to: path, unchangingSource: true) { sink in
            _ = try machine.streamState(to: ThrottledSink(sink, transfer: transfer), transfer: transfer) { _ in }
        }
    }

    func send(
        over socket: TCPSocket, transfer: TransferControl, diskFreeze: DiskFreeze?,
        destinationReady: () throws -> Void, progress: @escaping @Sendable (TransferStats) -> Void
    ) throws -> TransferStats {
        try destinationReady()
        return try machine.streamState(
            to: ThrottledSink(socket, transfer: transfer), transfer: transfer, atSwitchOver: Self.swapping(diskFreeze), progress: progress)
    }

    /// The switch-over hook that swaps `freeze`'s tops, run with the board parked.
    private static func swapping(_ freeze: DiskFreeze?) -> (@Sendable (VirtMachine) throws -> Void)? {
        guard let freeze else { return nil }
        return { board in try freeze.swap(board) }
    }

    func swapDisks(_ freeze: DiskFreeze) throws {
        try machine.onCPU { try freeze.swap($0) }
    }

    func editDisk(_ drive: Int, _ body: @escaping @Sendable (QCOW2Image) throws -> Void) throws {
        try machine.onCPU { board in
            guard let image = board.disk(drive) as? QCOW2Image else { throw DiskEditError() }
            try body(image)
        }
    }

    func replaceDisks(with paths: [String]) throws {
        try machine.onCPU { board in
            for (drive, path) in paths.enumerated() {
                try board.replaceDisk(drive, with: try QCOW2Image(path: path))
            }
        }
    }

    func receive(from socket: TCPSocket, reading: () -> Void) throws {
        reading()
        _ = try machine.load(from: socket)
    }

    func counters(first: Bool, paused: Bool) -> RuntimeCounters? {
        // Only a machine on its CPU thread: `onCPU` runs the body right here for one that is not,
        // and one not started yet may be loading a stream on another thread.
        guard machine.isRunning else { return nil }
        var retired: UInt64?
        var dirty: UInt64 = 0
        if first {
            guard
                let read = try? machine.onCPU({ board -> (UInt64, Int32?) in
                    board.setDirtyPageCounting(true)
                    return (board.hart.state.retired, ThreadStat.currentThreadID())
                }), machine.isRunning
            else { return nil }  // ended meanwhile: the thread id may not be its CPU's
            cpuThread.withLock { $0 = read.1 }
            retired = read.0
        } else if !paused {
            // A paused guest retires nothing and writes nothing: its parked CPU is not woken to say so.
            guard let read = try? machine.onCPU({ board in (board.hart.state.retired, board.takeDirtyPageCount()) }) else { return nil }
            retired = read.0
            dirty = UInt64(read.1)
        }
        return RuntimeCounters(
            retired: retired, dirtyPages: dirty,
            cpuTicks: cpuThread.withLock { $0 }.flatMap(ThreadStat.cpuTicks(thread:)),
            rssBytes: machine.machine.ram.residentBytes())
    }
}
