import EmulatorCore
import Foundation
import Migration
import RISCV

/// A started guest: its machine on a CPU thread and the serial line between it and the console buffer.
final class GuestRuntime: Sendable {
    let machine: LiveMachine
    let serial: SerialConsole

    init(guest: GuestRecord, image: ImageCatalog.Image, machineType: MachineType, console: ConsoleBuffer,
         onExit: @escaping @Sendable (String) -> Void) throws {
        serial = SerialConsole { console.append($0) }
        var options = RunOptions(machine: machineType.name, kernel: image.kernelPath, memoryMiB: guest.memoryMiB, icount: guest.icount)
        options.bios = image.biosPath.map { .file($0) } ?? .none
        machine = try LiveMachine(options: options, machineType: machineType, console: serial) { outcome in
            switch outcome {
            case .passed: onExit("powered off")
            case .failed(let code): onExit("test finisher reported failure \(code)")
            case .instructionLimit: onExit("instruction limit")
            case .stopped, .dumpedDeviceTree: onExit("stopped")
            }
        }
    }

    func start() { machine.start() }
    func pause() { machine.pause() }
    func resume() { machine.resume() }
    func stop() { machine.stop() }
    func reset() throws { try machine.reset() }
    func type(_ bytes: [UInt8]) { serial.send(bytes) }
    func restore(fromFile path: String) throws { try machine.load(fromFile: path) }
}
