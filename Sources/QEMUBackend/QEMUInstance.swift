// A QEMU process together with its QMP connection, started as one step: the monitor
// socket is bound and connected to before QEMU starts, so the greeting is the first
// thing read; if QEMU ends first (a bad option, a machine that needs a kernel), the
// error is QEMU's own stderr and exit status.
import Foundation

final class QEMUInstance: Sendable {
    let process: QEMUProcess
    let qmp: QMPClient
    /// The monitor socket file this QEMU listens on, to remove it (and only it) when QEMU ends.
    let monitorIdentity: (dev_t, ino_t)?

    private init(process: QEMUProcess, qmp: QMPClient, monitorIdentity: (dev_t, ino_t)?) {
        self.process = process
        self.qmp = qmp
        self.monitorIdentity = monitorIdentity
    }

    /// Starts `line` (its monitor is added here) in `directory`, the monitor socket at
    /// `monitorPath`. Events and the exit are reported through the callbacks. The descriptors
    /// `line` passes are QEMU's from here on: they are closed in this process as soon as QEMU
    /// has them (or the start failed), so a QEMU that dies early leaves nothing listening and
    /// the connections waiting on it fail at once.
    static func launch(
        _ line: QEMUCommandLine, directory: String, logPath: String, monitorPath: String,
        timeout: Duration = .seconds(30), onGreeting: () -> Void = {},
        onEvent: @escaping @Sendable (QMPEvent) -> Void = { _ in },
        onExit: @escaping @Sendable (QEMUExit) -> Void = { _ in }
    ) throws -> QEMUInstance {
        var line = line
        let listening: Int32
        do { listening = try UnixSocket.listen(at: monitorPath) } catch {
            for fd in line.inherited { close(fd) }
            throw error
        }
        line.monitor(listening: listening)
        let identity = UnixSocket.identity(ofSocketAt: monitorPath)
        let client: Int32
        do { client = try UnixSocket.connect(to: monitorPath) } catch {
            for fd in line.inherited { close(fd) }
            unlink(monitorPath)
            throw error
        }
        let process: QEMUProcess
        do {
            defer { for fd in line.inherited { close(fd) } }
            process = try QEMUProcess(
                executable: line.executable, arguments: line.arguments, directory: directory,
                logPath: logPath, inherited: line.inherited, onExit: onExit)
        } catch {
            close(client)
            unlink(monitorPath)
            throw error
        }
        do {
            let qmp = try QMPClient(socket: client, timeout: timeout, onGreeting: onGreeting, onEvent: onEvent)
            return QEMUInstance(process: process, qmp: qmp, monitorIdentity: identity)
        } catch {
            // Most often QEMU refused its command line and exited: its stderr says why.
            process.kill()
            let exit = process.waitForExit(timeout: .seconds(10))
            unlink(monitorPath)
            if let exit, !exit.succeeded || !exit.reason.isEmpty { throw QEMUError.exited(exit) }
            throw error
        }
    }

    /// `quit`, then waits for the process; kills it if it does not end within `timeout`.
    @discardableResult
    func quit(timeout: Duration = .seconds(10)) -> QEMUExit {
        if let exit = process.exit { return exit }
        _ = try? qmp.execute("quit", timeout: timeout)
        if let exit = process.waitForExit(timeout: timeout) {
            qmp.close()
            return exit
        }
        qmp.close()
        return process.terminate()
    }
}
