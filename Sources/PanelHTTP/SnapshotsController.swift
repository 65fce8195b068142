import HTTPServer
import PanelCore

/// `/guests/{id}/snapshots`: take, list as a tree, restore, describe, delete (SPEC §5). What waits
/// for the guest's lock (another change of it may be under way) runs on the worker pool.
struct SnapshotsController: Sendable {
    let snapshots: SnapshotService
    let workers: WorkerPool

    struct CreateSnapshot: Decodable { var name: String; var description: String? }
    struct PatchSnapshot: Decodable { var description: String }

    func addRoutes(to api: RouteGroup) {
        api.get(
            "/guests/{id}/snapshots", summary: "Snapshots of a guest, each with its parent (a tree)",
            doc: .init(answer: Items<SnapshotView>.self)
        ) { request in
            .json(Items(items: try snapshots.listSnapshots(try request.parameter("id"))))
        }
        api.post(
            "/guests/{id}/snapshots", summary: "Take a snapshot: {name, description}; answers 202 with the task",
            doc: .init(body: CreateSnapshot.self, answer: TaskEnvelope.self, status: .accepted)
        ) { request in
            let (body, id) = (try request.decode(CreateSnapshot.self), try request.parameter("id"))
            return workers.respond {
                respondMapped {
                    .json(TaskEnvelope(task: try snapshots.takeSnapshot(id, name: body.name, description: body.description ?? "")), status: .accepted)
                }
            }
        }
        api.get("/guests/{id}/snapshots/{name}", summary: "One snapshot", doc: .init(answer: SnapshotView.self)) { request in
            .json(try snapshots.snapshot(try request.parameter("id"), name: try request.parameter("name")))
        }
        api.patch(
            "/guests/{id}/snapshots/{name}", summary: "Change a snapshot's description: {description}",
            doc: .init(body: PatchSnapshot.self, answer: SnapshotView.self)
        ) { request in
            let body = try request.decode(PatchSnapshot.self)
            return .json(
                try snapshots.updateSnapshotDescription(
                    try request.parameter("id"), name: try request.parameter("name"),
                    description: body.description))
        }
        api.delete(
            "/guests/{id}/snapshots/{name}", summary: "Delete a snapshot; its children move up to its parent",
            doc: .init(answer: nil, status: .noContent)
        ) { request in
            let (id, name) = (try request.parameter("id"), try request.parameter("name"))
            return workers.respond {
                respondMapped {
                    try snapshots.deleteSnapshot(id, name: name); return .empty()
                }
            }
        }
        api.post(
            "/guests/{id}/snapshots/{name}/restore", summary: "Restore a snapshot; answers 202 with the task",
            doc: .init(answer: TaskEnvelope.self, status: .accepted)
        ) { request in
            let (id, name) = (try request.parameter("id"), try request.parameter("name"))
            return workers.respond { respondMapped { .json(TaskEnvelope(task: try snapshots.restoreSnapshot(id, name: name)), status: .accepted) } }
        }
    }
}
