import EmulatorCore
import HTTPServer
import PanelCore

/// `/machine-types` and `/compatibility` (SPEC §1, §2, §5, §8): every machine type of both
/// backends with its migration tier, its state descriptions, and which releases (or QEMU
/// versions) its guests can move between. QEMU's answers may wait for discovery: on the pool.
struct MachineTypesController: Sendable {
    let catalog: MachineTypeCatalog
    let workers: WorkerPool

    func addRoutes(to api: RouteGroup) {
        api.get(
            "/machine-types", summary: "Machine types of both backends with their migration tier and deprecation (`backend` filters)",
            doc: .init(answer: Items<MachineTypeSummary>.self, query: [.backend])
        ) { request in
            let backend = try request.backend()
            return workers.respond { respondMapped { .json(try catalog.list(backend: backend)) } }
        }
        api.get(
            "/machine-types/{name}",
            summary: "One machine type (name or alias): tier and why, devices with their state versions, blockers, compat properties",
            doc: .init(answer: MachineTypeDetail.self, query: [.backend, .binary])
        ) { request in
            let (name, backend, binary) = (try request.parameter("name"), try request.backend() ?? .builtin, request.query["binary"])
            return workers.respond { respondMapped { .json(try catalog.detail(name, backend: backend, binary: binary)) } }
        }
        api.get(
            "/machine-types/{name}/vmstate",
            summary: "The machine type's state descriptions in QEMU's -dump-vmstate layout (QEMU's own for QEMU types)",
            doc: .init(answer: JSON.self, query: [.backend, .binary])
        ) { request in
            let (name, backend, binary) = (try request.parameter("name"), try request.backend() ?? .builtin, request.query["binary"])
            return workers.respond {
                respondMapped {
                    .json(bytes: Array(try catalog.vmstateDump(name, backend: backend, binary: binary).utf8))
                }
            }
        }
        api.get(
            "/compatibility",
            summary:
                "Machine type × release matrix: QEMU's static checker both ways against each frozen release (backend=qemu: × QEMU version, this host's and its peers')",
            doc: .init(answer: CompatibilityDocument.self, query: [.backend])
        ) { request in
            let backend = try request.backend() ?? .builtin
            // Read from the frozen releases once, then kept; the first request waits on the pool.
            return workers.respond {
                respondMapped {
                    .json(backend == .qemu ? try catalog.qemuCompatibility() : catalog.compatibility())
                }
            }
        }
    }
}

extension Request {
    /// `?backend=builtin|qemu`, or nil when absent.
    func backend() throws -> Backend? {
        guard let text = query["backend"] else { return nil }
        guard let backend = Backend(rawValue: text) else {
            throw HTTPError(.badRequest, code: "invalid_query", message: "query parameter 'backend' must be builtin or qemu")
        }
        return backend
    }
}

extension RouteDocumentation.QueryParameter {
    static let backend = Self("backend", .string(cases: Backend.allCases.map(\.rawValue)), "Only this backend's machine types (builtin or qemu)")
    static let binary = Self(
        "binary", .string, "QEMU types: the binary that has it (qemu-system-x86_64); by default the one that starts it with its defaults")
}
