import EmulatorCore
import Foundation
import Migration
import RISCV

/// A started guest: its machine on a CPU thread and the serial line between it and the console buffer.
final class GuestRuntime: Sendable {
    let machine: LiveMachine
    let serial: SerialConsole

    /// How a guest's CPU thread ended on its own (never after `stop()`).
    struct Exit: Sendable {
        /// The runtime whose machine ended; nil once nothing holds it (then it is registered nowhere).
        var runtime: GuestRuntime?
        var reason: String
        var instructions: UInt64
    }

    /// `drives` are the guest's disks, top overlays first in drive order (GuestDiskFiles.drives).
    init(
        guest: GuestRecord, image: ImageCatalog.Image, machineType: MachineType, drives: [DriveConfiguration],
        console: ConsoleBuffer, onExit: @escaping @Sendable (Exit) -> Void
    ) throws {
        serial = SerialConsole { console.append($0) }
        let board = try VirtMachine.booted(
            machineType,
            configuration: MachineConfiguration(
                memoryMiB: guest.memoryMiB, clock: guest.icount ? .defaultICount : .realtime, drives: drives),
            firmware: image.biosPath, kernel: image.kernelPath, initrd: image.initrdPath, commandLine: image.commandLine)
        board.console = serial
        let owner = Owner()
        machine = LiveMachine(board) { outcome in
            let runtime = owner.runtime
            onExit(Exit(runtime: runtime, reason: Self.reason(outcome), instructions: runtime?.machine.instructionsRetired ?? 0))
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

    func start() { machine.start() }
    func pause() { machine.pause() }
    func resume() { machine.resume() }
    func stop() { machine.stop() }
    func reset() throws { try machine.reset() }
    /// False when the guest has not read enough of the input before it (SerialConsole.inputCapacity).
    func type(_ bytes: [UInt8]) -> Bool { serial.send(bytes) }
    func restore(fromFile path: String, expectedChecksum: String? = nil) throws {
        try machine.load(fromFile: path, expectedChecksum: expectedChecksum)
    }
}

/// Lets the exit callback name the runtime it belongs to, so a replaced machine's late exit can be
/// told apart from the registered one's (set right after the machine is built).
private final class Owner: @unchecked Sendable {  // written once before the CPU thread starts, read after it ended
    weak var runtime: GuestRuntime?
}
