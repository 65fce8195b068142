// One QEMU child process: started from an argument vector (never a shell) in a given
// directory, stdout and stderr appended to a log file, descriptors passed on purpose
// as 3, 4, …; a thread waits for it and reports how it ended, with the reason QEMU
// wrote to stderr in this run ("qemu-system-riscv64: Size mismatch: …").
import CProcessIO
import Foundation
import Synchronization

/// How a QEMU process ended.
public struct QEMUExit: Sendable, Equatable, CustomStringConvertible {
    /// The exit status, when it exited (the test finisher's code on riscv `virt`).
    public var status: Int32?
    /// The signal that killed it, when one did.
    public var signal: Int32?
    /// What QEMU wrote to stderr in this run, program-name prefixes removed, lines joined
    /// with "; " (at most the last 4 KiB); empty when it said nothing.
    public var reason: String

    public var succeeded: Bool { status == 0 }

    public var description: String {
        let how = status.map { "exited with status \($0)" } ?? signal.map { "was killed by signal \($0)" } ?? "ended"
        return reason.isEmpty ? how : "\(how): \(reason)"
    }
}

public final class QEMUProcess: Sendable {
    public let pid: pid_t
    public let executable: String
    public let logPath: String
    /// Where this run's output starts in the log (it is appended to, run after run).
    private let logStart: UInt64
    private let ended = Mutex<QEMUExit?>(nil)
    private let endedSignal = DispatchSemaphore(value: 0)

    /// Starts `executable` (a path) with `arguments` (argv[1...]) in `directory`. The log file is
    /// created 0600 if needed and appended to; `inherited[i]` becomes descriptor 3 + i in QEMU.
    /// `onExit` runs once on the waiting thread when the process has ended.
    public init(
        executable: String, arguments: [String], directory: String, logPath: String, inherited: [Int32] = [],
        onExit: @escaping @Sendable (QEMUExit) -> Void = { _ in }
    ) throws {
        self.executable = executable
        self.logPath = logPath
        let log = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard log >= 0 else { throw QEMUError.io(operation: "open \(logPath)", errno: errno) }
        defer { close(log) }
        var info = stat()
        logStart = fstat(log, &info) == 0 ? UInt64(info.st_size) : 0
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard null >= 0 else { throw QEMUError.io(operation: "open /dev/null", errno: errno) }
        defer { close(null) }

        var pid: pid_t = 0
        let argv = [executable] + arguments
        // Only what QEMU needs from the environment: no secrets (EMUPANEL_TOKEN) reach it.
        let environment = ProcessInfo.processInfo.environment.filter { Self.passedEnvironment.contains($0.key) }
            .map { "\($0.key)=\($0.value)" }
        let error = withCStrings(argv) { argvPointers in
            withCStrings(environment) { envPointers in
                inherited.withUnsafeBufferPointer { fds in
                    emupanel_spawn(
                        &pid, executable, argvPointers, envPointers, directory, null, log, log,
                        fds.baseAddress, Int32(fds.count))
                }
            }
        }
        guard error == 0 else {
            throw QEMUError.launchFailed(binary: executable, reason: String(cString: strerror(error)))
        }
        self.pid = pid
        let thread = Thread { [self] in
            let exit = waitForChild()
            ended.withLock { $0 = exit }
            endedSignal.signal()
            onExit(exit)
        }
        thread.name = "emupanel-qemu-wait"
        thread.start()
    }

    private static let passedEnvironment: Set<String> = ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"]

    /// How it ended, or nil while it runs.
    public var exit: QEMUExit? { ended.withLock { $0 } }

    /// Waits until the process has ended; nil if it still runs after `timeout`.
    @discardableResult
    public func waitForExit(timeout: Duration) -> QEMUExit? {
        guard endedSignal.wait(timeout: .now() + timeout.seconds) == .success else { return nil }
        endedSignal.signal()
        return exit
    }

    /// Sets every thread of the process to the least CPU priority (nice 19), unless it has already
    /// been reaped. For a QEMU that is ending and that nothing waits on.
    public func lowerPriority() {
        ended.withLock { exit in
            guard exit == nil, let threads = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return }
            // On Linux a nice value belongs to each thread; PRIO_PROCESS with a thread id sets that one.
            for thread in threads.compactMap({ id_t($0) }) { setpriority(__priority_which_t(PRIO_PROCESS.rawValue), thread, 19) }
        }
    }

    /// Sends `signal` unless the process has already been reaped (its pid may be reused then).
    public func kill(_ signal: Int32 = SIGKILL) {
        ended.withLock { exit in
            if exit == nil { _ = Glibc.kill(pid, signal) }
        }
    }

    /// Ends it for sure: SIGTERM, then SIGKILL after `grace`; returns how it ended.
    @discardableResult
    public func terminate(grace: Duration = .seconds(5)) -> QEMUExit {
        if let exit { return exit }
        kill(SIGTERM)
        if let exit = waitForExit(timeout: grace) { return exit }
        kill(SIGKILL)
        return waitForExit(timeout: .seconds(60)) ?? QEMUExit(status: nil, signal: SIGKILL, reason: "")
    }

    /// The stderr QEMU wrote in this run so far, as one line (see QEMUExit.reason).
    public func stderrSummary() -> String {
        Self.summary(of: Self.readLog(logPath, from: logStart), executable: executable)
    }

    private func waitForChild() -> QEMUExit {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return QEMUExit(status: nil, signal: nil, reason: stderrSummary()) }
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import (they are macros).
        let signal = status & 0x7f
        return QEMUExit(
            status: signal == 0 ? (status >> 8) & 0xff : nil, signal: signal == 0 ? nil : signal,
            reason: stderrSummary())
    }

    private static func readLog(_ path: String, from offset: UInt64) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        guard let end = try? handle.seekToEnd(), end > offset else { return "" }
        // The last 4 KiB of this run say why it ended.
        let start = max(offset, end >= 4096 ? end - 4096 : 0)
        try? handle.seek(toOffset: start)
        return String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
    }

    /// Lines joined with "; ", without QEMU's "qemu-system-x: " prefix and without its
    /// informational lines ("…: info: QEMU waiting for connection on: …"), which say nothing of
    /// why it ended.
    static func summary(of text: String, executable: String) -> String {
        let prefix = (executable as NSString).lastPathComponent + ": "
        return text.split(whereSeparator: \.isNewline)
            .map { $0.hasPrefix(prefix) ? String($0.dropFirst(prefix.count)) : String($0) }
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("info: ") && !$0.contains(": info: ") }
            .joined(separator: "; ")
    }
}

/// Calls `body` with a NULL-terminated C array of the strings, valid only inside `body`.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
