import HTTPServer

/// `/guests/{id}/snapshots`: take, list as a tree, restore, describe, delete (SPEC §5).
struct SnapshotsController: Sendable {
    let guests: GuestManager

    struct Create: Decodable { var name: String; var description: String? }
    struct Patch: Decodable { var description: String }

    func addRoutes(to api: RouteGroup) {
        api.get("/guests/{id}/snapshots", summary: "Snapshots of a guest, each with its parent (a tree)") { request in
            .json(Items(items: try guests.listSnapshots(try request.parameter("id"))))
        }
        api.post("/guests/{id}/snapshots", summary: "Take a snapshot: {name, description}; answers 202 with the task") { request in
            let body = try request.decode(Create.self)
            let task = try guests.takeSnapshot(try request.parameter("id"), name: body.name, description: body.description ?? "")
            return .json(TaskEnvelope(task: task), status: .accepted)
        }
        api.get("/guests/{id}/snapshots/{name}", summary: "One snapshot") { request in
            .json(try guests.snapshot(try request.parameter("id"), name: try request.parameter("name")))
        }
        api.patch("/guests/{id}/snapshots/{name}", summary: "Change a snapshot's description: {description}") { request in
            let body = try request.decode(Patch.self)
            return .json(try guests.updateSnapshotDescription(try request.parameter("id"), name: try request.parameter("name"),
                                                              description: body.description))
        }
        api.delete("/guests/{id}/snapshots/{name}", summary: "Delete a snapshot; its children move up to its parent") { request in
            try guests.deleteSnapshot(try request.parameter("id"), name: try request.parameter("name"))
            return .empty()
        }
        api.post("/guests/{id}/snapshots/{name}/restore", summary: "Restore a snapshot; answers 202 with the task") { request in
            let task = try guests.restoreSnapshot(try request.parameter("id"), name: try request.parameter("name"))
            return .json(TaskEnvelope(task: task), status: .accepted)
        }
    }
}
