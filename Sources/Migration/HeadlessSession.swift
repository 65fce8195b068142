import EmulatorCore
import Foundation
import RISCV
import VMState

/// `emupanel run` as a library: build the machine QEMU-style, optionally continue from a
/// snapshot file, run on a CPU thread of its own, optionally stop at an instruction count
/// and save. The command line only parses flags and maps the outcome to an exit status.
public struct HeadlessSession {
    public var options: RunOptions
    public var machineType: MachineType
    public var loadPath: String?
    public var saveAt: UInt64?
    public var savePath: String?

    public init(options: RunOptions, machineType: MachineType, loadPath: String? = nil, saveAt: UInt64? = nil, savePath: String? = nil) {
        self.options = options
        self.machineType = machineType
        self.loadPath = loadPath
        self.saveAt = saveAt
        self.savePath = savePath
    }

    public enum Outcome: Equatable, Sendable {
        case finished(RunOutcome)
        case saved(instructions: UInt64, sizeBytes: Int64)
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Runs to the end; `console` carries the UART, `control` lets another thread stop the guest.
    public func run(console: SerialConsole, control: RunControl) throws -> (outcome: Outcome, instructions: UInt64, seconds: Double) {
        let machine = try HeadlessRunner.makeMachine(options)
        machine.console = console
        // Tier none is refused before the guest runs a single instruction, naming every blocker.
        if loadPath != nil || savePath != nil { try machine.machineState(for: machineType).checkMigratable() }
        if let loadPath {
            try Self.load(loadPath, into: machine, as: machineType)
        }
        let limit = saveAt.map { min(options.maxInstructions ?? .max, $0) } ?? options.maxInstructions
        let box = MachineHandle(machine)
        let result = CPUThread.run { box.machine.run(maxInstructions: limit, control: control) }
        let instructions = machine.hart.state.retired
        if let saveAt, let savePath {
            guard result.value == .instructionLimit, instructions == saveAt else {
                throw Failure(description: "the guest ended (\(RunOutcome(result.value))) at instruction \(instructions), before --save-at \(saveAt)")
            }
            let state = try machine.machineState(for: machineType)
            let pages = machine.populatedPages()
            let written = try SnapshotFile.write(to: savePath) { sink in _ = try state.saveSnapshot(to: sink, pages: pages) }
            return (.saved(instructions: instructions, sizeBytes: written.sizeBytes), instructions, result.seconds)
        }
        return (.finished(RunOutcome(result.value)), instructions, result.seconds)
    }

    /// Replaces the machine's RAM and device state with a snapshot file's. Every device section
    /// is checked (from the file's tail) before any RAM is touched; with `expectedChecksum` the
    /// file is hashed while it loads and a mismatch throws (the machine must then be discarded).
    public static func load(_ path: String, into machine: VirtMachine, as type: MachineType,
                            expectedChecksum: String? = nil) throws {
        let state = try machine.machineState(for: type)
        try state.preflight(snapshotTail: try SnapshotFile.tail(of: path, count: 16 << 20))
        try SnapshotFile.read(path, expectedChecksum: expectedChecksum) { source in
            try machine.loadState(from: source, as: type)
        }
    }

}

/// Hands a machine to the CPU thread; only that thread touches it until it is joined.
final class MachineHandle: @unchecked Sendable { // ownership passes to the CPU thread and back at join
    let machine: VirtMachine
    init(_ machine: VirtMachine) { self.machine = machine }
}

/// Runs guest code on a dedicated thread (never Swift's cooperative pool) and waits for it.
enum CPUThread {
    static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) -> (value: T, seconds: Double) {
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox<T>()
        let thread = Thread {
            let start = DispatchTime.now().uptimeNanoseconds
            let value = body()
            result.set(value, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            done.signal()
        }
        thread.name = "emupanel-cpu0"
        thread.stackSize = 8 << 20
        thread.start()
        done.wait()
        return result.get()
    }
}

private final class ResultBox<T: Sendable>: @unchecked Sendable { // written once before the semaphore signals, read after wait
    private var value: T?
    private var seconds = 0.0
    func set(_ value: T, seconds: Double) { self.value = value; self.seconds = seconds }
    func get() -> (value: T, seconds: Double) { (value!, seconds) }
}
