// What the QEMU backend tests share: the installed binaries (tests that need one are
// skipped visibly without it), the project's test guests, scratch directories, and
// recorders for console output and events that tests wait on (never sleep on).
import Foundation
import Synchronization
import Testing

@testable import QEMUBackend

enum Installed {
    /// The binary on PATH, as discovery finds it.
    static func qemu(_ name: String) -> String? {
        QEMUDiscovery(cacheDirectory: "/nonexistent").binaryPaths(names: [name]).first
    }

    static let riscv64 = qemu("qemu-system-riscv64")
    static let x86_64 = qemu("qemu-system-x86_64")
    /// qemu-system-misc's Xtensa build: its CPU is marked non-migratable, so every Xtensa
    /// machine type is tier none with its default devices.
    static let xtensa = qemu("qemu-system-xtensa")
    /// qemu-system-misc's AVR build: 256-byte target pages.
    static let avr = qemu("qemu-system-avr")
}

enum Guests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("guests")
    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// riscv64 `virt` with no firmware, `elf` as the kernel (QEMU jumps to it in M-mode).
    static func riscv(_ elf: String, memoryMiB: Int = 32, devices: [String] = []) -> QEMUGuestConfiguration {
        QEMUGuestConfiguration(
            binary: Installed.riscv64 ?? "/usr/bin/qemu-system-riscv64", machineType: "virt",
            memoryMiB: memoryMiB, bios: "none", kernel: path(elf), devices: devices,
            name: "test-\(elf)")
    }
}

/// A directory under /tmp (short: it holds Unix sockets), removed by `remove()`.
struct Scratch {
    let path: String

    init(_ label: String) {
        path = "/tmp/emupanel-qemu-\(label)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func sub(_ name: String) -> String { path + "/" + name }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Collects console bytes, events and the exit of one guest; tests wait for what they expect.
final class Recorder: Sendable {
    /// Starts `configuration` in `scratch`/`name` (its log beside it), recorded by a new Recorder.
    static func start(
        _ configuration: QEMUGuestConfiguration, in scratch: Scratch, _ name: String = "guest",
        paused: Bool = false
    ) throws -> (QEMUGuest, Recorder) {
        let recorder = Recorder()
        let guest = try QEMUGuest.start(
            configuration, directory: scratch.sub(name), logPath: scratch.sub(name + ".log"),
            events: recorder.events, paused: paused)
        return (guest, recorder)
    }

    /// Restores `path` into a new QEMU in `scratch`/`name`, recorded by a new Recorder.
    static func restore(
        _ configuration: QEMUGuestConfiguration, from path: String, sha256: String, in scratch: Scratch,
        _ name: String = "restored", paused: Bool = false
    ) throws -> (QEMUGuest, Recorder) {
        let recorder = Recorder()
        let guest = try QEMUGuest.restore(
            configuration, fromSnapshot: path, expectedSHA256: sha256,
            directory: scratch.sub(name), logPath: scratch.sub(name + ".log"),
            events: recorder.events, paused: paused)
        return (guest, recorder)
    }

    private struct Seen {
        var console: [UInt8] = []
        var events: [QEMUGuestEvent] = []
        var exit: QEMUExit?
    }
    private let seen = Mutex(Seen())
    private let changed = DispatchSemaphore(value: 0)

    var events: QEMUGuestEvents {
        QEMUGuestEvents(
            console: { bytes in self.update { $0.console += bytes } },
            event: { event in self.update { $0.events.append(event) } },
            exited: { exit in self.update { $0.exit = exit } })
    }

    private func update(_ change: (inout Seen) -> Void) {
        seen.withLock { change(&$0) }
        changed.signal()
    }

    var console: String { String(decoding: seen.withLock { $0.console }, as: UTF8.self) }
    var recordedEvents: [QEMUGuestEvent] { seen.withLock { $0.events } }
    var exit: QEMUExit? { seen.withLock { $0.exit } }

    /// Waits until `condition` holds on what was recorded; false after `timeout`.
    func wait(timeout: Duration = .seconds(30), for condition: (Recorder) -> Bool) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !condition(self) {
            guard ContinuousClock.now < deadline else { return false }
            _ = changed.wait(timeout: .now() + 0.5)
        }
        return true
    }

    func waitForConsole(_ text: String, timeout: Duration = .seconds(30)) -> Bool {
        wait(timeout: timeout) { $0.console.contains(text) }
    }

    /// How many "pass N ok" lines mempattern printed so far.
    var passLines: Int { console.components(separatedBy: " ok").count - 1 }

    /// The highest "pass N ok" mempattern printed so far (0 before the first).
    var lastPass: Int {
        // QEMU's UART output ends lines with CR LF.
        console.split(whereSeparator: \.isNewline).compactMap { line -> Int? in
            guard line.hasPrefix("pass "), line.hasSuffix(" ok") else { return nil }
            return Int(line.dropFirst(5).dropLast(3))
        }.max() ?? 0
    }
}
