import Foundation
import GRDB
import Logging
import Synchronization

/// A long operation (snapshot, restore, migration) as the API shows it (SPEC §5).
public struct TaskInfo: Sendable, Codable, Equatable, FetchableRecord, PersistableRecord {
    public enum Status: String, Sendable, Codable, CaseIterable { case queued, running, succeeded, failed, cancelled }

    public var id: String
    public var kind: String
    public var guestId: String?
    public var status: Status
    /// 0...1
    public var progress: Double
    public var error: String?
    /// Kind-specific figures, e.g. a migration's `query-migrate` statistics.
    public var detail: JSON?
    public var createdAt: Date
    public var updatedAt: Date

    public static let databaseTableName = "task"

    public var isFinished: Bool { status == .succeeded || status == .failed || status == .cancelled }

    enum CodingKeys: String, CodingKey { case id, kind, guestId, status, progress, error, detail, createdAt, updatedAt }

    public func encode(to container: inout PersistenceContainer) throws {
        container["id"] = id
        container["kind"] = kind
        container["guestId"] = guestId
        container["status"] = status.rawValue
        container["progress"] = progress
        container["error"] = error
        container["detail"] = try detail.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        container["createdAt"] = createdAt
        container["updatedAt"] = updatedAt
    }

    public init(row: Row) throws {
        id = row["id"]
        kind = row["kind"]
        guestId = row["guestId"]
        status = Status(rawValue: row["status"]) ?? .failed
        progress = row["progress"]
        error = row["error"]
        let detailText: String? = row["detail"]
        detail = detailText.flatMap { try? JSONDecoder().decode(JSON.self, from: Data($0.utf8)) }
        createdAt = row["createdAt"]
        updatedAt = row["updatedAt"]
    }

    init(id: String, kind: String, guestId: String?) {
        self.id = id
        self.kind = kind
        self.guestId = guestId
        status = .queued
        progress = 0
        createdAt = Date()
        updatedAt = createdAt
    }
}

/// What running work can do with its task: report progress, notice cancellation.
public final class TaskHandle: Sendable {
    public let id: String
    let guestId: String?
    let manager: TaskManager
    private let cancelled = Atomic<Bool>(false)
    /// The transfer status the log last told of (a line per change, not per report).
    private let loggedStatus = Mutex<String?>(nil)
    /// Settings a client may change while the task runs (PATCH /tasks/{id}), e.g. a migration's downtime limit.
    let adjust: (@Sendable (JSON) throws -> Void)?

    init(id: String, guestId: String?, manager: TaskManager, adjust: (@Sendable (JSON) throws -> Void)?) {
        self.id = id
        self.guestId = guestId
        self.manager = manager
        self.adjust = adjust
    }

    private let cancelHandlers = Mutex<[@Sendable () -> Void]>([])
    private let finishHandlers = Mutex<[@Sendable () -> Void]>([])

    public var isCancelled: Bool { cancelled.load(ordering: .relaxed) }

    /// Runs `handler` when the task is cancelled (at once if it already was), so work that
    /// blocks elsewhere — a transfer, a socket — stops without polling the flag.
    public func onCancel(_ handler: @escaping @Sendable () -> Void) {
        let now = cancelHandlers.withLock { handlers -> Bool in
            if isCancelled { return true }
            handlers.append(handler)
            return false
        }
        if now { handler() }
    }

    /// Runs `handler` once the task is recorded finished and its final event is out: clean-up
    /// that must happen but that nobody waiting on the task should wait for (it would share the
    /// host's CPUs with the task's last steps).
    public func afterFinish(_ handler: @escaping @Sendable () -> Void) {
        finishHandlers.withLock { $0.append(handler) }
    }

    func runFinishHandlers() {
        let handlers = finishHandlers.withLock { handlers in
            defer { handlers.removeAll() }
            return handlers
        }
        for handler in handlers { handler() }
    }

    func cancel() {
        let handlers = cancelHandlers.withLock { handlers -> [@Sendable () -> Void] in
            cancelled.store(true, ordering: .relaxed)
            defer { handlers.removeAll() }
            return handlers
        }
        for handler in handlers { handler() }
    }

    public func progress(_ fraction: Double, detail: JSON? = nil) {
        // A transfer's move to a new status is worth a line in the log, written with the figures.
        let line = detail.flatMap(TransferLogLines.line(for:)).flatMap { status, line in
            loggedStatus.withLock { logged in
                defer { logged = status }
                return logged != status ? line : nil
            }
        }
        manager.update(id, logging: line, guestId: guestId) { task in
            task.progress = min(1, max(task.progress, fraction))
            if let detail { task.detail = detail }
        }
    }
}

/// Runs tasks on their own threads (never Swift's cooperative pool: they block on I/O and
/// guests), one task per guest at a time, persisting every change and announcing it as an event.
public final class TaskManager: Sendable {
    private let database: PanelDatabase
    let events: EventBus
    let logger: Logger
    let logStore: TaskLogStore

    private struct Live {
        var handles: [String: TaskHandle] = [:]
        var busyGuests: [String: String] = [:]
    }

    private let live = Mutex(Live())
    /// Entered when a task's thread is made, left when it ends.
    private let running = DispatchGroup()

    public init(database: PanelDatabase, events: EventBus, logger: Logger = Logger(label: "emupanel.tasks")) throws {
        self.database = database
        self.events = events
        self.logger = logger
        logStore = TaskLogStore(database: database)
        // Work that was running when the panel stopped did not finish.
        try database.write { db in
            try db.execute(
                sql: "UPDATE task SET status = 'failed', error = ?, updatedAt = ? WHERE status IN ('queued', 'running')",
                arguments: [Self.interruptedError, Date()])
        }
    }

    static let interruptedError = "interrupted: the panel stopped while this task ran"

    /// Starts `work` as a task; a guest already busy with another task answers 409. `summary`
    /// ends the log's first line (what the task is about to do).
    public func start(
        kind: String, guestId: String?, summary: String? = nil, adjust: (@Sendable (JSON) throws -> Void)? = nil,
        work: @escaping @Sendable (TaskHandle) throws -> JSON?
    ) throws -> TaskInfo {
        let id = "t-" + UUID().uuidString.lowercased().prefix(13).replacingOccurrences(of: "-", with: "")
        let handle = TaskHandle(id: id, guestId: guestId, manager: self, adjust: adjust)
        if let guestId {
            let busy = live.withLock { live -> String? in
                if let other = live.busyGuests[guestId] { return other }
                live.busyGuests[guestId] = id
                return nil
            }
            if let busy {
                throw PanelError(.conflict, code: "guest_busy", message: "guest \(guestId) is busy with task \(busy); wait or cancel it")
            }
        }
        let task = TaskInfo(id: id, kind: kind, guestId: guestId)
        do {
            try database.write { db in try task.insert(db) }
        } catch {
            release(task)
            throw error
        }
        live.withLock { $0.handles[id] = handle }
        events.publish("task.created", subject: id, data: Self.eventData(task))
        running.enter()
        let thread = Thread { [self] in
            run(task, handle: handle, summary: summary, work: work)
            running.leave()
        }
        thread.name = "emupanel-task-\(kind)"
        thread.start()
        return task
    }

    private func run(_ task: TaskInfo, handle: TaskHandle, summary: String?, work: @Sendable (TaskHandle) throws -> JSON?) {
        let first = "\(task.kind) started" + (task.guestId.map { " for guest \($0)" } ?? "") + (summary.map { ": " + $0 } ?? "")
        update(task.id, logging: first, guestId: task.guestId) { $0.status = .running }
        let outcome = Result { try work(handle) }
        let last: String
        switch outcome {
        case .success: last = "\(task.kind) succeeded"
        case .failure(let error):
            let (verb, reason) = (handle.isCancelled ? "cancelled" : "failed", String(describing: error))
            last = reason == verb ? "\(task.kind) \(verb)" : "\(task.kind) \(verb): \(reason)"
        }
        // The guest is free before the task is recorded finished and its final event goes out: a
        // client acting on either (a resume right after a restore) must not be told it is busy.
        release(task)
        // The log's last line goes in with the finish, so a reader who sees the task finished sees that line.
        update(task.id, logging: last, guestId: task.guestId) { task in
            switch outcome {
            case .success(let detail):
                task.status = .succeeded
                task.progress = 1
                if let detail { task.detail = detail }
            case .failure(let error):
                task.status = handle.isCancelled ? .cancelled : .failed
                task.error = String(describing: error)
            }
        }
        live.withLock { _ = $0.handles.removeValue(forKey: task.id) }
        handle.runFinishHandlers()
    }

    private func release(_ task: TaskInfo) {
        guard let guestId = task.guestId else { return }
        live.withLock { live in
            if live.busyGuests[guestId] == task.id { live.busyGuests.removeValue(forKey: guestId) }
        }
    }

    /// Applies a change in one transaction, persists it and announces it; with `logging`, the log
    /// line that says it goes in the same transaction, before it (one write on the task's path,
    /// not two). A task's progress must not fail the work it describes, so a database error is
    /// logged (with what was lost), not thrown.
    func update(
        _ id: String, logging message: String? = nil, guestId: String? = nil,
        _ change: @escaping @Sendable (inout TaskInfo) -> Void
    ) {
        func write(_ message: String?) -> Result<(line: TaskLogLine?, change: (before: TaskInfo, after: TaskInfo)?), any Error> {
            Result {
                try database.write { db in
                    let line = try message.flatMap { try TaskLogStore.append(taskId: id, message: $0, in: db) }
                    guard var task = try TaskInfo.fetchOne(db, key: id) else { return (line, nil) }
                    let before = task
                    change(&task)
                    guard task != before else { return (line, nil) }
                    task.updatedAt = Date()
                    try task.update(db)
                    return (line, (before, task))
                }
            }
        }
        var outcome = write(message)
        if case .failure(let error) = outcome, let message {
            // The line is what may be lost, never the change (a task left "running" forever).
            logger.error("could not record a task's log line", metadata: ["task": "\(id)", "line": "\(message)", "error": "\(error)"])
            outcome = write(nil)
        }
        if case .success((let line?, _)) = outcome { announce(line, guestId: guestId) }
        switch outcome.map(\.change) {
        case .success(let change?):
            let type = change.after.status != change.before.status ? "task.\(change.after.status.rawValue)" : "task.progress"
            events.publish(type, subject: id, data: Self.eventData(change.after))
        case .success(nil):
            break
        case .failure(let error):
            logger.error("could not record a task's change", metadata: ["task": "\(id)", "error": "\(error)"])
        }
    }

    /// Tasks the last run left unfinished (marked failed "interrupted" when this manager started).
    func interrupted() throws -> [TaskInfo] {
        try database.read { db in
            try TaskInfo.filter(Column("status") == "failed" && Column("error") == Self.interruptedError).fetchAll(db)
        }
    }

    /// An interrupted task whose work turned out done before the panel stopped.
    func settleInterrupted(_ id: String, note: String) {
        update(id) { task in
            task.status = .succeeded
            task.progress = 1
            task.error = nil
            if case .object(var fields)? = task.detail {
                fields["note"] = .string(note)
                task.detail = .object(fields)
            }
        }
    }

    public func list(guestId: String? = nil) throws -> [TaskInfo] {
        try database.read { db in
            var request = TaskInfo.order(Column("createdAt").desc).limit(500)
            if let guestId { request = request.filter(Column("guestId") == guestId) }
            return try request.fetchAll(db)
        }
    }

    public func get(_ id: String) throws -> TaskInfo {
        guard let task = try database.read({ db in try TaskInfo.fetchOne(db, key: id) }) else {
            throw PanelError.notFound("no task \(id)")
        }
        return task
    }

    /// Asks a running task to stop; finished tasks answer 409.
    public func cancel(_ id: String) throws -> TaskInfo {
        let task = try get(id)
        guard !task.isFinished, let handle = live.withLock({ $0.handles[id] }) else {
            throw PanelError(.conflict, code: "task_finished", message: "task \(id) is already \(task.status.rawValue)")
        }
        log(id, "cancel requested", guestId: task.guestId)
        handle.cancel()
        events.publish("task.cancelling", subject: id, data: Self.eventData(task))
        return task
    }

    /// Changes settings of a running task (a migration's downtime limit or bandwidth).
    public func adjust(_ id: String, with settings: JSON) throws -> TaskInfo {
        let task = try get(id)
        guard !task.isFinished, let handle = live.withLock({ $0.handles[id] }) else {
            throw PanelError(.conflict, code: "task_finished", message: "task \(id) is already \(task.status.rawValue)")
        }
        guard let adjust = handle.adjust else {
            throw PanelError(.invalid, code: "not_adjustable", message: "a \(task.kind) task has no settings to change")
        }
        try adjust(settings)
        if case .object(let changes) = settings, !changes.isEmpty {
            let text = changes.keys.sorted().map { key in
                if case .number(let value)? = changes[key] {
                    "\(key) = \(value.rounded() == value ? String(Int64(value)) : String(value))"
                } else {
                    key
                }
            }
            log(id, "settings changed: " + text.joined(separator: ", "), guestId: task.guestId)
        }
        return try get(id)
    }

    public func isBusy(guestId: String) -> Bool { live.withLock { $0.busyGuests[guestId] != nil } }

    public var activeCount: Int { live.withLock { $0.handles.count } }

    /// Cancels every running task and waits up to `timeout` seconds for all to end; false if
    /// some did not. A stopping panel must not save a guest that a task still streams or hands
    /// over (a cancelled transfer gives the guest back before its task ends).
    public func cancelAllAndWait(timeout: Double) -> Bool {
        for handle in live.withLock({ Array($0.handles.values) }) { handle.cancel() }
        return running.wait(timeout: .now() + timeout) == .success
    }

    /// Waits for a task to finish (tests, managed save at shutdown).
    public func wait(for id: String, timeout: Double) throws -> TaskInfo {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let task = try get(id)
            if task.isFinished || Date() > deadline { return task }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    static func eventData(_ task: TaskInfo) -> JSON {
        var data: [String: JSON] = [
            "id": .string(task.id), "kind": .string(task.kind), "status": .string(task.status.rawValue),
            "progress": .number(task.progress),
        ]
        if let guestId = task.guestId { data["guestId"] = .string(guestId) }
        if let error = task.error { data["error"] = .string(error) }
        if let detail = task.detail { data["detail"] = detail }
        return .object(data)
    }
}
