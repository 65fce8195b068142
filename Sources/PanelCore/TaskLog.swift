import Foundation
import GRDB

/// One line of a task's log (Proxmox's task log): what the task did, as it did it.
public struct TaskLogLine: Sendable, Codable, Equatable, FetchableRecord, PersistableRecord {
    public var taskId: String
    /// 1, 2, … within the task.
    public var seq: Int
    public var time: Date
    public var message: String

    public static let databaseTableName = "taskLog"
}

/// A task's log lines in SQLite, kept with the task; each new line is also an event
/// (`task.log`), so a viewer follows it live.
struct TaskLogStore: Sendable {
    /// A runaway task cannot fill the disk through its log: past this, one last line says so.
    static let maximumLines = 2000

    let database: PanelDatabase

    /// Appends a line; nil when the task's log is full (the line is dropped).
    func append(taskId: String, message: String) throws -> TaskLogLine? {
        try database.write { db in try Self.append(taskId: taskId, message: message, in: db) }
    }

    /// Appends a line within the caller's transaction (a task's change and the line that says it).
    static func append(taskId: String, message: String, in db: Database) throws -> TaskLogLine? {
        let count = try TaskLogLine.filter(Column("taskId") == taskId).fetchCount(db)
        guard count < maximumLines else { return nil }
        let text = count == maximumLines - 1 ? "… later lines dropped (a task keeps \(maximumLines))" : message
        let line = TaskLogLine(taskId: taskId, seq: count + 1, time: Date(), message: text)
        try line.insert(db)
        return line
    }

    func lines(taskId: String, after seq: Int) throws -> [TaskLogLine] {
        try database.read { db in
            try TaskLogLine.filter(Column("taskId") == taskId && Column("seq") > seq).order(Column("seq")).fetchAll(db)
        }
    }
}

extension TaskManager {
    /// Appends a line to a task's log and announces it; a line that cannot be stored is logged
    /// here instead, never failing the task it describes.
    func log(_ id: String, _ message: String, guestId: String?) {
        do {
            guard let line = try logStore.append(taskId: id, message: message) else { return }
            announce(line, guestId: guestId)
        } catch {
            logger.error("could not record a task's log line", metadata: ["task": "\(id)", "line": "\(message)", "error": "\(error)"])
        }
    }

    /// `task.log`: a stored line, for viewers following the task live.
    func announce(_ line: TaskLogLine, guestId: String?) {
        var data: [String: JSON] = [
            "taskId": .string(line.taskId), "seq": .number(Double(line.seq)),
            "time": .string(line.time.formatted(.iso8601)), "message": .string(line.message),
        ]
        if let guestId { data["guestId"] = .string(guestId) }
        events.publish("task.log", subject: line.taskId, data: .object(data))
    }

    /// A task's log lines after `seq` (all with 0).
    public func log(of id: String, after seq: Int = 0) throws -> [TaskLogLine] {
        _ = try get(id)
        return try logStore.lines(taskId: id, after: seq)
    }
}

extension TaskHandle {
    /// Adds a line to this task's log (shown live in the task viewer).
    public func log(_ message: String) {
        manager.log(id, message, guestId: guestId)
    }
}

/// The lines a transfer's figures are worth in a log: one when its query-migrate status moves on.
enum TransferLogLines {
    static func line(for detail: JSON) -> (status: String, line: String)? {
        guard case .string(let status)? = detail["status"] else { return nil }
        let ram = detail["ram"]
        func number(_ value: JSON?) -> Double? { if case .number(let n)? = value { return n } else { return nil } }
        func mebibytes(_ value: JSON?) -> String { number(value).map { String(format: "%.1f MiB", $0 / 1_048_576) } ?? "?" }
        let limit = number(detail["downtime-limit"]).map { "\(Int($0)) ms" } ?? "?"
        switch status {
        case "active":
            return (status, "copying RAM while the guest runs: \(mebibytes(ram?["total"])) of guest RAM, downtime limit \(limit)")
        case "device":
            let expected = number(detail["expected-downtime"]).map { "\(Int($0)) ms" } ?? "?"
            return (status, "guest paused for the last pages and the devices (expected downtime \(expected), limit \(limit))")
        case "completed":
            let downtime = number(detail["downtime"]).map { "\(Int($0)) ms" } ?? "?"
            let total = number(detail["total-time"]).map { "\(Int($0)) ms" } ?? "?"
            let mbps = number(ram?["mbps"]).map { String(format: "%.1f Mbit/s", $0) } ?? "?"
            var missed = ""
            if let d = number(detail["downtime"]), let l = number(detail["downtime-limit"]), l > 0, d > l { missed = " — over the limit" }
            return (status, "state sent: \(mebibytes(ram?["transferred"])) in \(total) at \(mbps); downtime \(downtime) (limit \(limit))\(missed)")
        case "cancelled":
            return (status, "transfer cancelled")
        default:
            return (status, "transfer \(status)")
        }
    }
}

extension APIExamples {
    public static let taskLogLine = TaskLogLine(taskId: task.id, seq: 1, time: date, message: "migrate started for guest \(guest.id)")
}
