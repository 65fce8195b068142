import EmulatorCore
import HTTPServer
import PanelCore

/// `/machine-types` and `/compatibility` (SPEC §1, §2, §5): every machine type with its
/// migration tier, its state descriptions, and which releases its guests can move between.
struct MachineTypesController: Sendable {
    let catalog: MachineTypeCatalog
    let workers: WorkerPool

    func addRoutes(to api: RouteGroup) {
        api.get(
            "/machine-types", summary: "Machine types with their migration tier and deprecation",
            doc: .init(answer: Items<MachineTypeSummary>.self)
        ) { _ in
            .json(catalog.list())
        }
        api.get(
            "/machine-types/{name}",
            summary: "One machine type (name or alias): tier and why, devices with their state versions, blockers, compat properties",
            doc: .init(answer: MachineTypeDetail.self)
        ) { request in
            .json(try catalog.detail(try request.parameter("name")))
        }
        api.get(
            "/machine-types/{name}/vmstate", summary: "The machine type's state descriptions in QEMU's -dump-vmstate layout",
            doc: .init(answer: JSON.self)
        ) { request in
            .json(bytes: Array(try catalog.vmstateDump(try request.parameter("name")).utf8))
        }
        api.get(
            "/compatibility", summary: "Machine type × release matrix: QEMU's static checker both ways against each frozen release",
            doc: .init(answer: CompatibilityDocument.self)
        ) { _ in
            // Read from the frozen releases once, then kept; the first request waits on the pool.
            workers.respond { .json(catalog.compatibility()) }
        }
    }
}
