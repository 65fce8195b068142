import HTTPServer
import PanelCore

/// `/tasks`: what is running and what ran, with cancel and mid-flight adjustments.
struct TasksController: Sendable {
    let tasks: TaskManager

    func addRoutes(to api: RouteGroup) {
        api.get(
            "/tasks", summary: "Tasks, newest first; `guestId` filters",
            doc: .init(answer: Items<TaskInfo>.self, query: [.init("guestId", .string, "Only this guest's tasks")])
        ) { request in
            .json(Items(items: try tasks.list(guestId: request.query["guestId"])))
        }
        api.get("/tasks/{id}", summary: "One task", doc: .init(answer: TaskInfo.self)) { request in
            .json(try tasks.get(try request.parameter("id")))
        }
        api.get(
            "/tasks/{id}/log", summary: "The task's log lines after `since` (a line's `seq`), oldest first; new ones arrive as `task.log` events",
            doc: .init(answer: Items<TaskLogLine>.self, query: [.init("since", .integer, "Only lines after this `seq`")])
        ) { request in
            let since = try request.queryInt("since", default: 0, range: 0...Int.max)
            return .json(Items(items: try tasks.log(of: try request.parameter("id"), after: since)))
        }
        api.patch(
            "/tasks/{id}", summary: "Change a running task's settings (migration: downtimeLimitMs, maxBandwidth)",
            doc: .init(body: TaskSettings.self, answer: TaskInfo.self)
        ) { request in
            let settings = try request.decode(JSON.self)
            guard case .object = settings else {
                throw HTTPError(.badRequest, code: "invalid_json", message: "send a JSON object of settings")
            }
            return .json(try tasks.adjust(try request.parameter("id"), with: settings))
        }
        api.delete("/tasks/{id}", summary: "Cancel a running task", doc: .init(answer: TaskEnvelope.self, status: .accepted)) { request in
            Response.json(TaskEnvelope(task: try tasks.cancel(try request.parameter("id"))), status: .accepted)
        }
    }
}

/// What `PATCH /tasks/{id}` may change (a migration's limits; other kinds have none).
struct TaskSettings: Decodable {
    var downtimeLimitMs: Double?
    var maxBandwidth: Double?
}
