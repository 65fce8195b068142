import Foundation

/// What Linux's /proc says about the panel's threads and process: the CPU time `top` shows per
/// thread, and the resident set. Each read is a small text file; none of it needs privileges.
enum ThreadStat {
    static let ticksPerSecond = Double(max(1, sysconf(Int32(_SC_CLK_TCK))))

    /// The calling thread's kernel id (`/proc/thread-self` links to `PID/task/TID`).
    static func currentThreadID() -> Int32? {
        guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self") else { return nil }
        return link.split(separator: "/").last.flatMap { Int32($0) }
    }

    /// User plus system time of one thread of this process, in clock ticks.
    static func cpuTicks(thread id: Int32) -> UInt64? {
        cpuTicks(statFile: "/proc/self/task/\(id)/stat")
    }

    /// User plus system time of the whole process, in clock ticks.
    static func processCPUTicks() -> UInt64? {
        cpuTicks(statFile: "/proc/self/stat")
    }

    /// The process's resident set (`/proc/self/statm`, second field, in pages).
    static func processRSSBytes() -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = UInt64(fields[1]) else { return nil }
        return pages * UInt64(max(1, sysconf(Int32(_SC_PAGESIZE))))
    }

    /// Fields 14 and 15 of proc(5)'s `stat` (utime, stime), counted after the command name, which
    /// is in parentheses and may itself hold spaces and parentheses.
    static func cpuTicks(statFile path: String) -> UInt64? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3), so utime (14) and stime (15) are at 11 and 12.
        guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        return user + system
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
