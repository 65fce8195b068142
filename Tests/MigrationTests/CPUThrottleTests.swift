import Foundation
import RISCV
import Synchronization
import Testing

@testable import Migration

/// The auto-converge throttle on a real CPU thread: under --icount a throttled guest computes
/// exactly what an unthrottled one does, and work for the CPU thread does not wait out a sleep.
@Suite(.serialized) struct CPUThrottleTests {
    /// A guest on its CPU thread with its console collected, and a way to wait for its end.
    final class Guest: Sendable {
        final class Output: Sendable { let bytes = Mutex<[UInt8]>([]) }
        let machine: LiveMachine
        let output = Output()
        let ended = DispatchSemaphore(value: 0)

        init(_ elf: String, icount: Bool = true) throws {
            let kernel = ServeProcess.root.appendingPathComponent("guests/\(elf)").path
            let type = try VirtMachineTypes.registry.resolve("virt")
            let output = self.output
            let ended = self.ended
            let board = try VirtMachine.booted(
                type, configuration: MachineConfiguration(memoryMiB: 64, clock: icount ? .defaultICount : .realtime),
                firmware: nil, kernel: kernel)
            board.console = SerialConsole { bytes in output.bytes.withLock { $0 += bytes } }
            machine = LiveMachine(board, onExit: { _ in ended.signal() })
        }

        var text: String { String(decoding: output.bytes.withLock { $0 }, as: UTF8.self) }
    }

    @Test func throttledGuestComputesTheSameUnderIcount() throws {
        let straight = try Guest("bench-quick.elf")
        straight.machine.start()
        straight.ended.wait()

        let throttledGuest = try Guest("bench-quick.elf")
        let throttle = CPUThrottle(throttledGuest.machine)
        throttledGuest.machine.start()
        throttle.set(percentage: 50)
        throttledGuest.ended.wait()
        throttle.stop()

        #expect(throttle.napsTaken > 0, "it slept")
        #expect(throttledGuest.text == straight.text)
        #expect(throttledGuest.text.contains("checksum"))
        #expect(throttledGuest.machine.instructionsRetired == straight.machine.instructionsRetired)
    }

    @Test func workForTheCPURunsInsideItsSleep() throws {
        let guest = try Guest("mempattern-forever.elf", icount: false)
        let throttle = CPUThrottle(guest.machine)
        guest.machine.start()
        defer {
            throttle.stop()
            guest.machine.stop()
        }
        // At 99% the vCPU sleeps 990 ms of every second: wait until it does.
        throttle.set(percentage: 99)
        let deadline = Date().addingTimeInterval(30)
        while throttle.napsTaken == 0 || !throttle.isSleeping, Date() < deadline { usleep(1000) }
        #expect(throttle.isSleeping)
        let retired = try throttle.onCPU { $0.hart.state.retired }
        #expect(retired > 0)
        #expect(throttle.workRunAsleep == 1, "run by the sleeping vCPU, not queued behind its sleep")
        // Lifted, it runs on (the pattern keeps printing).
        throttle.set(percentage: 0)
        let before = guest.machine.instructionsRetired
        let resumed = Date().addingTimeInterval(30)
        while guest.machine.instructionsRetired == before, Date() < resumed { usleep(1000) }
        #expect(guest.machine.instructionsRetired > before)
    }
}
