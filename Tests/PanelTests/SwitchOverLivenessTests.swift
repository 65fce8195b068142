import Foundation
import Migration
import Synchronization
import Testing

@testable import PanelCore

/// The switch-over's sign of life: the destination's `WAIT` lines and the source's watchdog that
/// tells a slow destination from a silent one (a loaded host fsyncing disk layers took longer than
/// the downtime limit plus the grace, and a migration that would have succeeded was given up).
struct SwitchOverLivenessTests {
    final class Shuts: Sendable {
        private let count = Atomic<Int>(0)
        func add() { count.add(1, ordering: .relaxed) }
        var total: Int { count.load(ordering: .relaxed) }
    }

    private func watchdog(grace: Double, cap: Double, shut: Shuts) -> SwitchOverWatchdog {
        SwitchOverWatchdog(grace: .milliseconds(Int64(grace * 1000)), cap: .milliseconds(Int64(cap * 1000)), limit: { 50 }, shut: { shut.add() })
    }

    @Test func aSilentDestinationIsGivenUpAfterTheLimitPlusTheGrace() throws {
        let shut = Shuts()
        let watchdog = watchdog(grace: 0.2, cap: 10, shut: shut)
        watchdog.arm()
        Thread.sleep(forTimeInterval: 0.1)
        #expect(!watchdog.fired)
        Thread.sleep(forTimeInterval: 0.6)
        #expect(watchdog.fired && shut.total == 1)
        #expect(watchdog.timeout.message.contains("no sign of life"), "\(watchdog.timeout.message)")
    }

    @Test func aDestinationThatKeepsSayingWaitKeepsTheMigrationUntilTheCap() throws {
        let shut = Shuts()
        let watchdog = watchdog(grace: 0.2, cap: 1.2, shut: shut)
        watchdog.arm()
        let armed = Date()
        // Signs of life well inside each window: past several windows, then up to the cap.
        while Date().timeIntervalSince(armed) < 0.8 {
            #expect(!watchdog.fired, "fired after \(Date().timeIntervalSince(armed)) s of WAITs")
            watchdog.touch()
            Thread.sleep(forTimeInterval: 0.05)
        }
        while !watchdog.fired, Date().timeIntervalSince(armed) < 3 {
            watchdog.touch()
            Thread.sleep(forTimeInterval: 0.05)
        }
        let after = Date().timeIntervalSince(armed)
        #expect(watchdog.fired && after >= 1.2 && after < 2, "fired after \(after) s")
        #expect(watchdog.timeout.message.contains("did not finish the switch-over"), "\(watchdog.timeout.message)")
        #expect(shut.total == 1)
    }

    @Test func aDisarmedWatchdogNeverFires() throws {
        let shut = Shuts()
        let watchdog = watchdog(grace: 0.05, cap: 0.1, shut: shut)
        watchdog.touch()
        watchdog.arm()
        watchdog.disarm()
        Thread.sleep(forTimeInterval: 0.4)
        #expect(!watchdog.fired && shut.total == 0)
    }

    /// The destination beats only for a source that reads it, never inside its own lines, and not
    /// after it stopped (the verdict is the last thing before GO).
    @Test(arguments: [true, false]) func theDestinationSaysWaitOnlyWhenAsked(enabled: Bool) throws {
        let listener = try TCPListener(host: "127.0.0.1")
        defer { listener.close() }
        let source = try TCPSocket.connect(host: "127.0.0.1", port: listener.port, timeout: 5)
        let destination = try listener.accept(timeout: 5)
        let heartbeat = SwitchOverHeartbeat(socket: destination, enabled: enabled)
        Thread.sleep(forTimeInterval: 1.3)
        try heartbeat.write(line: "DISKS")
        Thread.sleep(forTimeInterval: 0.6)
        heartbeat.stop()
        try destination.write(line: "OK")
        Thread.sleep(forTimeInterval: 0.6)
        destination.shutdown()
        var lines: [String] = []
        while let line = try source.readLine() { lines.append(line) }
        let disks = try #require(lines.firstIndex(of: "DISKS"), "\(lines)")
        #expect(lines.last == "OK", "\(lines)")
        #expect(Set(lines).isSubset(of: ["WAIT", "DISKS", "OK"]), "\(lines)")
        if enabled {
            #expect(disks >= 2 && lines.count - disks - 2 >= 1, "WAITs before and after DISKS: \(lines)")
        } else {
            #expect(lines == ["DISKS", "OK"])
        }
        // What the source's reads see: the protocol's lines, each WAIT a touch.
        #expect(lines.filter { $0 != "WAIT" } == ["DISKS", "OK"])
    }
}
