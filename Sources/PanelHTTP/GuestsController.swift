import Foundation
import HTTPServer
import PanelCore

/// `/guests`: create, list, change, delete, lifecycle actions and the serial console (SPEC §5).
/// Whatever takes the guest's lock (a change of it may be under way, and actions wait on its CPU
/// thread or the disk) runs on the worker pool, never on the server's threads.
struct GuestsController: Sendable {
    let guests: GuestRegistry
    let lifecycle: GuestLifecycle
    let workers: WorkerPool

    struct CreateGuest: Decodable {
        var name: String
        var image: String
        var machineType: String
        var memoryMiB: Int
        var icount: Bool?
        /// `builtin` (the default) or `qemu`.
        var backend: Backend?
        /// QEMU guests: the binary by name (`qemu-system-riscv64`); by default the one with the
        /// machine type for the image's architecture.
        var binary: String?
        /// The size of the disk an image with one brings (its `disk.sizeBytes` when absent).
        var diskSizeBytes: Int64?
    }

    struct PatchGuest: Decodable {
        var name: String?
        var memoryMiB: Int?
        var icount: Bool?
    }

    struct ConsoleInput: Decodable { var data: String }

    func addRoutes(to api: RouteGroup) {
        api.get("/guests", summary: "Guests", doc: .init(answer: Items<GuestRecord>.self)) { _ in .json(Items(items: try guests.list())) }
        api.post(
            "/guests", summary: "Create a guest from an image: {name, image, machineType, memoryMiB, icount?, backend?, binary?, diskSizeBytes?}",
            doc: .init(body: CreateGuest.self, answer: GuestRecord.self, status: .created)
        ) { request in
            let body = try request.decode(CreateGuest.self)
            // A QEMU guest may wait for discovery, a disk's file system takes a moment: off the server's threads.
            return workers.respond {
                respondMapped {
                    .json(
                        try lifecycle.create(
                            name: body.name, image: body.image, machineType: body.machineType,
                            memoryMiB: body.memoryMiB, icount: body.icount ?? false,
                            backend: body.backend ?? .builtin, binary: body.binary, diskSizeBytes: body.diskSizeBytes), status: .created)
                }
            }
        }
        api.get("/guests/{id}", summary: "One guest", doc: .init(answer: GuestRecord.self)) { request in
            .json(try guests.get(try request.parameter("id")))
        }
        api.patch(
            "/guests/{id}", summary: "Rename; change memory or clock while stopped",
            doc: .init(body: PatchGuest.self, answer: GuestRecord.self)
        ) { request in
            let (body, id) = (try request.decode(PatchGuest.self), try request.parameter("id"))
            return workers.respond {
                respondMapped { .json(try lifecycle.patch(id, name: body.name, memoryMiB: body.memoryMiB, icount: body.icount)) }
            }
        }
        api.delete("/guests/{id}", summary: "Delete a stopped guest and its snapshots", doc: .init(answer: nil, status: .noContent)) { request in
            let id = try request.parameter("id")
            return workers.respond {
                respondMapped {
                    try lifecycle.delete(id); return .empty()
                }
            }
        }
        for action in GuestLifecycle.Action.allCases {
            api.post("/guests/{id}/\(action.rawValue)", summary: action.summary, doc: .init(answer: GuestRecord.self)) { request in
                let id = try request.parameter("id")
                return workers.respond { respondMapped { .json(try lifecycle.perform(action, on: id)) } }
            }
        }
        api.get(
            "/guests/{id}/console", summary: "Serial output after `since`, waiting up to `wait` s (long poll): {data, next}",
            doc: .init(answer: ConsoleBuffer.ConsoleChunk.self, query: [.since, .wait])
        ) { request in
            let console = try guests.console(try request.parameter("id"))
            let since = try request.queryInt("since", default: 0, range: 0...Int.max)
            let wait = try request.queryInt("wait", default: 0, range: 0...60)
            return LongPoll.respond(console, after: UInt64(since), wait: Double(wait))
        }
        api.post(
            "/guests/{id}/console", summary: "Type into the serial console: {data}",
            doc: .init(body: ConsoleInput.self, answer: nil, status: .noContent)
        ) { request in
            let input = try request.decode(ConsoleInput.self)
            try lifecycle.type(Array(input.data.utf8), into: try request.parameter("id"))
            return .empty()
        }
    }
}
