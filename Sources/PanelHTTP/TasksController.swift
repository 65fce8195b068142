import HTTPServer
import PanelCore

/// `/tasks`: what is running and what ran, with cancel and mid-flight adjustments.
struct TasksController: Sendable {
    let tasks: TaskManager

    func addRoutes(to api: RouteGroup) {
        api.get("/tasks", summary: "Tasks, newest first; `guestId` filters") { request in
            .json(Items(items: try tasks.list(guestId: request.query["guestId"])))
        }
        api.get("/tasks/{id}", summary: "One task") { request in
            .json(try tasks.get(try request.parameter("id")))
        }
        api.patch("/tasks/{id}", summary: "Change a running task's settings (migration: downtimeLimitMs, maxBandwidth)") { request in
            let settings = try request.decode(JSON.self)
            guard case .object = settings else {
                throw HTTPError(.badRequest, code: "invalid_json", message: "send a JSON object of settings")
            }
            return .json(try tasks.adjust(try request.parameter("id"), with: settings))
        }
        api.delete("/tasks/{id}", summary: "Cancel a running task") { request in
            Response.json(TaskEnvelope(task: try tasks.cancel(try request.parameter("id"))), status: .accepted)
        }
    }
}

/// What a route that starts a task answers with 202 (SPEC §5).
struct TaskEnvelope: Encodable { var task: TaskInfo }
