// A QEMU guest driven through QMP: start paused, run, pause, resume, reset, quit; the
// console in both directions; QEMU's events and its exit reported through callbacks.
import Foundation
import Testing

@testable import QEMUBackend

@Suite(.enabled(if: Installed.riscv64 != nil, "needs qemu-system-riscv64 (qemu-system-misc)"))
struct GuestLifecycleTests {
    @Test func startPauseResumeResetAndQuit() throws {
        let scratch = Scratch("lifecycle")
        defer { scratch.remove() }
        let (guest, recorder) = try Recorder.start(Guests.riscv("echo.elf"), in: scratch, paused: true)
        defer { guest.kill() }
        #expect(try guest.runState() == "prelaunch")
        #expect(FileManager.default.fileExists(atPath: scratch.sub("guest/" + QEMUGuest.monitorSocketName)))
        // Paused from the start: not a byte of output until `cont`.
        #expect(recorder.console.isEmpty)
        try guest.resume()
        #expect(recorder.waitForConsole("echo: ready"))
        #expect(recorder.wait { $0.recordedEvents.contains(.resume) })

        try guest.pause()
        #expect(recorder.wait { $0.recordedEvents.contains(.stop) })
        #expect(try guest.runState() == "paused")
        try guest.resume()
        #expect(try guest.runState() == "running")

        try guest.reset()
        #expect(recorder.wait { $0.recordedEvents.contains(.reset(guestInitiated: false, reason: "host-qmp-system-reset")) })
        // After the reset the guest starts over from its first line.
        #expect(recorder.wait { $0.console.components(separatedBy: "echo: ready").count == 3 })

        let exit = guest.stop()
        #expect(exit.status == 0)
        #expect(recorder.wait { $0.exit != nil })
        #expect(recorder.wait { $0.recordedEvents.contains(.shutdown(guestInitiated: false, reason: "host-qmp-quit")) })
        // QEMU's sockets go with it.
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("guest/" + QEMUGuest.monitorSocketName)))
    }

    /// A panel that was killed leaves its QEMU running: the next one finds it by its monitor
    /// socket and ends it; a socket nobody listens on any more is only removed.
    @Test func anOrphanQEMUIsEndedThroughItsMonitorSocket() throws {
        let scratch = Scratch("orphan")
        defer { scratch.remove() }
        let (guest, recorder) = try Recorder.start(Guests.riscv("echo.elf"), in: scratch)
        defer { guest.kill() }
        #expect(recorder.waitForConsole("echo: ready"))
        // What a killed panel leaves: QEMU, its monitor listening again, nobody connected.
        guest.qmp.close()
        #expect(QEMUOrphan.quit(in: scratch.sub("guest")))
        #expect(recorder.wait { $0.exit != nil }, "the orphan ended")
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("guest/" + QEMUGuest.monitorSocketName)))
        #expect(!QEMUOrphan.quit(in: scratch.sub("guest")), "nothing left to end")
    }

    @Test func aGuestThatPowersOffEndsItsQEMU() throws {
        let scratch = Scratch("poweroff")
        defer { scratch.remove() }
        let (guest, recorder) = try Recorder.start(Guests.riscv("mempattern.elf"), in: scratch)
        defer { guest.kill() }
        // The SiFive test finisher ends QEMU with the guest's status: 0 = passed.
        #expect(recorder.wait { $0.exit != nil })
        #expect(recorder.exit?.status == 0)
        #expect(recorder.console.contains("memory-pattern: OK"))
    }

    @Test func consoleInputReachesTheGuest() throws {
        let scratch = Scratch("console")
        defer { scratch.remove() }
        let (guest, recorder) = try Recorder.start(Guests.riscv("echo.elf"), in: scratch)
        defer { guest.kill() }
        // QEMU's UART flushes its FIFO when the guest enables it: type after "ready".
        #expect(recorder.waitForConsole("ready"))
        try guest.sendConsole(Array("hello".utf8))
        #expect(recorder.waitForConsole("hello"))
        try guest.sendConsole(Array("q".utf8))
        #expect(recorder.wait { $0.exit != nil })
        #expect(recorder.exit?.status == 0)
    }

    @Test func qemuRefusingItsCommandLineSaysWhy() throws {
        let scratch = Scratch("refused")
        defer { scratch.remove() }
        var configuration = Guests.riscv("echo.elf")
        configuration.kernel = scratch.sub("missing.elf")
        let error = #expect(throws: QEMUError.self) {
            try QEMUGuest.start(configuration, directory: scratch.path, logPath: scratch.sub("qemu.log"))
        }
        guard case .exited(let exit) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(exit.status == 1)
        #expect(exit.reason.contains("missing.elf"))
        // The same words are in the guest's log, with QEMU's program-name prefix.
        let log = try String(contentsOfFile: scratch.sub("qemu.log"), encoding: .utf8)
        #expect(log.contains("qemu-system-riscv64: could not load kernel"))
    }

    @Test(.enabled(if: Installed.qemu("qemu-system-x86_64-microvm") != nil, "needs Debian's qemu-system-x86_64-microvm"))
    func aQEMUThatRejectsItsOptionsBeforeItsMonitorExistsSaysWhy() throws {
        // The microvm build has no seccomp; asked for -sandbox, it exits while parsing options.
        let scratch = Scratch("no-monitor")
        defer { scratch.remove() }
        let configuration = QEMUGuestConfiguration(
            binary: Installed.qemu("qemu-system-x86_64-microvm")!,
            machineType: "microvm", memoryMiB: 16, sandbox: true)
        let error = #expect(throws: QEMUError.self) {
            try QEMUGuest.start(configuration, directory: scratch.path, logPath: scratch.sub("qemu.log"))
        }
        guard case .exited(let exit) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(exit.reason.contains("-sandbox support is not enabled"))
    }

    @Test func badConfigurationsNeverReachQEMU() throws {
        let scratch = Scratch("invalid")
        defer { scratch.remove() }
        var configuration = Guests.riscv("echo.elf")
        configuration.machineType = "virt,accel=kvm"
        #expect(throws: QEMUError.self) {
            try QEMUGuest.start(configuration, directory: scratch.path, logPath: scratch.sub("qemu.log"))
        }
        configuration = Guests.riscv("echo.elf")
        configuration.kernel = "relative.elf"
        #expect(throws: QEMUError.self) {
            try QEMUGuest.start(configuration, directory: scratch.path, logPath: scratch.sub("qemu.log"))
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("qemu.log")))
    }

    @Test func qmpErrorsCarryQEMUsClassAndText() throws {
        let scratch = Scratch("qmp")
        defer { scratch.remove() }
        let guest = try QEMUGuest.start(
            Guests.riscv("echo.elf"), directory: scratch.path,
            logPath: scratch.sub("qemu.log"), paused: true)
        defer { guest.kill() }
        #expect(guest.version.major >= 7)
        let error = #expect(throws: QMPError.self) { try guest.qmp.execute("no-such-command") }
        guard case .commandFailed(_, let errorClass, let text) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(errorClass == "CommandNotFound")
        #expect(text.contains("no-such-command"))
        guest.stop()
        #expect(throws: QMPError.self) { try guest.qmp.execute("query-status") }
    }
}

/// Why QEMU ended, as one line: its own error lines, without its name and its "info:" lines.
@Test func qemusReasonKeepsItsErrorsOnly() {
    let stderr = """
        qemu-system-riscv64: -chardev socket,id=c,fd=3,server=on,wait=on: info: QEMU waiting for connection on: disconnected:unix:/x
        qemu-system-riscv64: Size mismatch: riscv_virt_board.ram: 0x4000000 != 0x8000000: Invalid argument

        qemu-system-riscv64: load of migration failed: Invalid argument
        """
    #expect(
        QEMUProcess.summary(of: stderr, executable: "/usr/bin/qemu-system-riscv64")
            == "Size mismatch: riscv_virt_board.ram: 0x4000000 != 0x8000000: Invalid argument; load of migration failed: Invalid argument")
}
