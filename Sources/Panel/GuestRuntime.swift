import EmulatorCore
import Foundation
import Migration
import RISCV

/// A started guest: its machine on a CPU thread and the serial line between it and the console buffer.
final class GuestRuntime: Sendable {
    let machine: LiveMachine
    let serial: SerialConsole

    init(guest: GuestRecord, image: ImageCatalog.Image, machineType: MachineType, console: ConsoleBuffer,
         onExit: @escaping @Sendable (String, UInt64) -> Void) throws {
        serial = SerialConsole { console.append($0) }
        var options = RunOptions(machine: machineType.name, kernel: image.kernelPath, memoryMiB: guest.memoryMiB, icount: guest.icount)
        options.bios = image.biosPath.map { .file($0) } ?? .none
        let retired = Retired()
        machine = try LiveMachine(options: options, machineType: machineType, console: serial) { outcome in
            let count = retired.machine?.instructionsRetired ?? 0
            switch outcome {
            case .passed: onExit("powered off", count)
            case .failed(let code): onExit("test finisher reported failure \(code)", count)
            case .instructionLimit: onExit("instruction limit", count)
            case .stopped, .dumpedDeviceTree: onExit("stopped", count)
            }
        }
        retired.machine = machine
    }

    func start() { machine.start() }
    func pause() { machine.pause() }
    func resume() { machine.resume() }
    func stop() { machine.stop() }
    func reset() throws { try machine.reset() }
    func type(_ bytes: [UInt8]) { serial.send(bytes) }
    func restore(fromFile path: String, expectedSHA256: String? = nil) throws {
        try machine.load(fromFile: path, expectedSHA256: expectedSHA256)
    }
}

/// Lets the exit callback read the machine it belongs to (set right after the machine is built).
private final class Retired: @unchecked Sendable { // written once before the CPU thread starts, read after it ended
    weak var machine: LiveMachine?
}
