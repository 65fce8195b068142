import EmulatorCore
import Foundation
import HTTPServer
import VMState

/// `/machine-types` and `/compatibility` (SPEC §1, §2, §5): every machine type with its
/// migration tier, its state descriptions, and which releases its guests can move between.
struct MachineTypesController: Sendable {
    let machines: MachineRegistry
    let policy: DeprecationPolicy
    let fixturesDir: String

    func addRoutes(to api: RouteGroup) {
        api.get("/machine-types", summary: "Machine types with their migration tier and deprecation") { _ in
            .json(MachineTypeSummary.list(machines, policy: policy))
        }
        api.get("/machine-types/{name}", summary: "One machine type (name or alias): tier and why, devices with their state versions, blockers, compat properties") { request in
            let name = try request.parameter("name")
            return .json(MachineTypeDetail(try resolve(name), requested: name, policy: policy))
        }
        api.get("/machine-types/{name}/vmstate", summary: "The machine type's state descriptions in QEMU's -dump-vmstate layout") { request in
            .json(bytes: Array(try resolve(try request.parameter("name")).vmstateDump().utf8))
        }
        api.get("/compatibility", summary: "Machine type × release matrix: QEMU's static checker both ways against each frozen release") { _ in
            let matrix = CompatibilityMatrix(registry: machines, currentRelease: Release.current,
                                             frozen: FrozenRelease.loadAll(from: fixturesDir))
            return .json(CompatibilityDocument(matrix))
        }
    }

    private func resolve(_ name: String) throws -> MachineType {
        do {
            return try machines.resolve(name)
        } catch let error as MachineError {
            throw HTTPError(.notFound, code: "unknown_machine_type", message: error.description)
        }
    }
}

/// `GET /compatibility` as JSON: columns are releases (oldest first, the current last),
/// rows machine types, each cell says whether state moves each way and, if not, why.
struct CompatibilityDocument: Encodable {
    var currentRelease: String
    var releases: [String]
    var items: [Row]

    struct Row: Encodable {
        var machineType: String
        var tier: String?
        var cells: [Cell]
    }

    struct Cell: Encodable {
        var release: String
        var status: String
        var forward: Bool?
        var backward: Bool?
        var reason: String?
        var forwardProblems: [String]
        var backwardProblems: [String]
    }

    init(_ matrix: CompatibilityMatrix) {
        currentRelease = matrix.currentRelease
        releases = matrix.releases
        items = matrix.rows.map { row in
            Row(machineType: row.machineType, tier: row.tier?.rawValue, cells: row.cells.map {
                Cell(release: $0.release, status: $0.status.rawValue, forward: $0.forward, backward: $0.backward,
                     reason: $0.reason, forwardProblems: $0.forwardProblems, backwardProblems: $0.backwardProblems)
            })
        }
    }
}
