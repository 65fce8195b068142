// A QEMU left running by a panel that was killed: the panel's children are not ended with it
// (posix_spawn has no PR_SET_PDEATHSIG, and that would follow the spawning thread, not the
// process), so the next start looks for one in each QEMU guest's directory. QEMU's monitor is
// a listening socket there that takes a new client once the old one is gone: the panel
// connects and sends `quit`.
import Foundation

public enum QEMUOrphan {
    /// Ends the QEMU still listening on `directory`'s monitor socket, if there is one; true if
    /// one was found (and told to quit). Stale socket files of a QEMU that is gone are removed.
    @discardableResult
    public static func quit(in directory: String, timeout: Duration = .seconds(10)) -> Bool {
        let monitorPath = directory + "/" + QEMUGuest.monitorSocketName
        let consolePath = directory + "/" + QEMUGuest.consoleSocketName
        guard FileManager.default.fileExists(atPath: monitorPath) else { return false }
        guard let socket = try? UnixSocket.connect(to: monitorPath) else {
            // Nobody listens: the QEMU that made it is gone.
            unlink(monitorPath)
            unlink(consolePath)
            return false
        }
        let disconnected = DispatchSemaphore(value: 0)
        guard let qmp = try? QMPClient(socket: socket, timeout: timeout, onDisconnect: { _ in disconnected.signal() }) else {
            return false
        }
        _ = try? qmp.execute("quit", timeout: timeout)
        // QEMU closes the monitor as it exits; it is not our child, so this is all there is to wait on.
        _ = disconnected.wait(timeout: .now() + timeout.seconds)
        qmp.close()
        unlink(monitorPath)
        unlink(consolePath)
        return true
    }
}
