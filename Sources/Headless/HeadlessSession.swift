import EmulatorCore
import Foundation
import Migration
import RISCV
import VMState

/// `emupanel run` as a library: build the machine QEMU-style, optionally continue from a
/// snapshot file, run it on its CPU thread (`LiveMachine`), optionally stop at an instruction
/// count and save. The command line only parses flags and maps the outcome to an exit status.
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
    public func run(
        console: SerialConsole, control: RunControl = RunControl()
    ) throws
        -> (outcome: Outcome, instructions: UInt64, seconds: Double)
    {
        let machine = try VirtMachine.booted(
            machineType, configuration: options.configuration, firmware: options.bios.path,
            kernel: options.kernel, initrd: options.initrd, commandLine: options.append)
        machine.console = console
        // Tier none is refused before the guest runs a single instruction, naming every blocker.
        if loadPath != nil || savePath != nil { try machine.machineState(for: machineType).checkMigratable() }
        if let loadPath {
            try machine.load(snapshotFile: loadPath, as: machineType)
        }
        let limit = saveAt.map { min(options.maxInstructions ?? .max, $0) } ?? options.maxInstructions
        let live = LiveMachine(machine, control: control)
        live.start(maxInstructions: limit)
        let result = live.wait()
        let instructions = live.instructionsRetired
        if let saveAt, let savePath {
            guard result == .instructionLimit, instructions == saveAt else {
                throw Failure(description: "the guest ended (\(result)) at instruction \(instructions), before --save-at \(saveAt)")
            }
            let state = try machine.machineState(for: machineType)
            let pages = machine.populatedPages()
            let written = try SnapshotFile.write(to: savePath) { sink in _ = try state.saveSnapshot(to: sink, pages: pages) }
            return (.saved(instructions: instructions, sizeBytes: written.sizeBytes), instructions, live.runSeconds)
        }
        return (.finished(result), instructions, live.runSeconds)
    }

    /// `--dumpdtb`: the tree the guest would get, like QEMU's dumpdtb (initrd bounds included).
    public static func dumpDeviceTree(_ options: RunOptions, of type: MachineType, to path: String) throws {
        let machine =
            options.initrd == nil
            ? try VirtMachine.board(type, configuration: options.configuration, commandLine: options.append)
            : try VirtMachine.booted(
                type, configuration: options.configuration, firmware: options.bios.path,
                kernel: options.kernel, initrd: options.initrd, commandLine: options.append)
        guard FileManager.default.createFile(atPath: path, contents: Data(machine.deviceTree)) else {
            throw MachineError.unreadableFile(path)
        }
    }
}
