import EmulatorCore
import Foundation
import Synchronization

/// The machine types as the panel shows them: summaries, details, state descriptions and the
/// compatibility matrix. Descriptions and the matrix never change while the panel runs (frozen
/// releases are never rewritten), so each is computed once, on first use, and kept.
public final class MachineTypeCatalog: Sendable {
    public let machines: MachineRegistry
    let policy: DeprecationPolicy
    let fixturesDir: String
    private let dumps = Mutex<[String: String]>([:])
    private let matrix = Mutex<CompatibilityDocument?>(nil)

    init(machines: MachineRegistry, policy: DeprecationPolicy, fixturesDir: String) {
        self.machines = machines
        self.policy = policy
        self.fixturesDir = fixturesDir
    }

    public func list() -> Items<MachineTypeSummary> { MachineTypeSummary.list(machines, policy: policy) }

    public func detail(_ name: String) throws -> MachineTypeDetail {
        MachineTypeDetail(try resolve(name), requested: name, policy: policy)
    }

    /// QEMU's `-dump-vmstate` JSON for the type.
    public func vmstateDump(_ name: String) throws -> String {
        let type = try resolve(name)
        if let known = dumps.withLock({ $0[type.name] }) { return known }
        let dump = type.vmstateDump()
        dumps.withLock { $0[type.name] = dump }
        return dump
    }

    /// Machine type × release, QEMU's static checker run both ways against each frozen release.
    /// Reads files and runs the checker the first time: call it off threads that must stay quick.
    public func compatibility() -> CompatibilityDocument {
        if let known = matrix.withLock({ $0 }) { return known }
        let document = CompatibilityDocument(
            CompatibilityMatrix(
                registry: machines, currentRelease: Release.current,
                frozen: FrozenRelease.loadAll(from: fixturesDir)))
        matrix.withLock { $0 = document }
        return document
    }

    func resolve(_ name: String) throws -> MachineType {
        do {
            return try machines.resolve(name)
        } catch let error as MachineError {
            throw PanelError(.notFound, code: "unknown_machine_type", message: error.description)
        }
    }
}
