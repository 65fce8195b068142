import Foundation
import HTTPTestSupport
import Testing

/// `emupanel serve` stopped by signals at its most delicate moments.
extension MigrationTests {
    /// SIGTERM while the panel resumes the guests it saved at its last stop: the signal waits for
    /// start-up to finish and the panel then stops cleanly, saving the guest again — before, the
    /// default action killed it with the save already consumed, and the guest booted afresh.
    @Test func sigtermWhileResumingSavedGuestsLosesNothing() throws {
        let first = try ServeProcess(name: "sigterm")
        try withExtendedLifetime(first) {
            let id = try startMemoryPattern(on: first, memoryMiB: 512)
            let stopped = first.terminate()
            #expect(stopped.reason == .exit && stopped.status == 0)

            let second = try ServeProcess(name: "sigterm", reusing: first, logLevel: "info", waitForListening: false)
            #expect(try eventually(within: 30) { second.log.contains("resuming a guest saved at the last stop") })
            let interrupted = second.terminate()
            #expect(interrupted.reason == .exit && interrupted.status == 0, "a clean stop, not the default action: \(second.log.suffix(500))")

            let third = try ServeProcess(name: "sigterm", reusing: first)
            #expect(try third.get("/guests/\(id)")["state"] as? String == "running", "resumed again: the save was not lost")
            try expectStillChecking(id, on: third)
            #expect(try third.send("POST", "/guests/\(id)/stop").status == 200)
        }
    }
}
