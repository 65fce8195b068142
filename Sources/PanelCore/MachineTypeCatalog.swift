import EmulatorCore
import Foundation
import QEMUBackend
import Synchronization

/// The machine types as the panel shows them: summaries, details, state descriptions and the
/// compatibility matrix, for both backends (SPEC §8). The built-in core's descriptions and matrix
/// never change while the panel runs (frozen releases are never rewritten), so each is computed
/// once, on first use, and kept; QEMU's come from discovery (`QEMUHost`).
public final class MachineTypeCatalog: Sendable {
    public let machines: MachineRegistry
    let policy: DeprecationPolicy
    let fixturesDir: String
    let qemu: QEMUHost
    let peers: [PanelSettings.Peer]
    private let dumps = Mutex<[String: String]>([:])
    private let matrix = Mutex<CompatibilityDocument?>(nil)

    init(machines: MachineRegistry, policy: DeprecationPolicy, fixturesDir: String, qemu: QEMUHost, peers: [PanelSettings.Peer] = []) {
        self.peers = peers
        self.machines = machines
        self.policy = policy
        self.fixturesDir = fixturesDir
        self.qemu = qemu
    }

    /// Every machine type of `backend`, or of both (built-in first, then each QEMU binary's).
    /// QEMU's list waits for discovery when a start is still probing.
    public func list(backend: Backend? = nil) throws -> Items<MachineTypeSummary> {
        var items: [MachineTypeSummary] = []
        if backend != .qemu { items += MachineTypeSummary.list(machines, policy: policy).items }
        if backend != .builtin {
            for binary in try qemu.binaries() {
                items += binary.machineTypes.map { MachineTypeSummary($0, of: binary) }
            }
        }
        return Items(items: items)
    }

    /// One type by name or alias; a QEMU type in `binary`, or in the binary that suits it best.
    public func detail(_ name: String, backend: Backend = .builtin, binary: String? = nil) throws -> MachineTypeDetail {
        guard backend == .qemu else {
            try Self.refuseBinary(binary)
            return MachineTypeDetail(try resolve(name), requested: name, policy: policy)
        }
        let (found, type) = try qemuType(name, binary: binary)
        return MachineTypeDetail(type, of: found, requested: name)
    }

    /// The type's state descriptions in QEMU's `-dump-vmstate` layout: the built-in core's own, or
    /// the dump QEMU itself writes.
    public func vmstateDump(_ name: String, backend: Backend = .builtin, binary: String? = nil) throws -> String {
        guard backend == .builtin else {
            let (found, type) = try qemuType(name, binary: binary)
            return try qemu.vmstateDump(found, machineType: type.name)
        }
        try Self.refuseBinary(binary)
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

    /// Machine type × QEMU version, this host's QEMUs and its peers' (QEMUCompatibility).
    public func qemuCompatibility() throws -> CompatibilityDocument {
        try QEMUCompatibility(host: qemu, peers: peers).document()
    }

    private func qemuType(_ name: String, binary: String?) throws -> (QEMUBinary, QEMUMachineType) {
        do {
            return try qemu.machineType(name, binary: binary)
        } catch let error as PanelError where error.code == "unknown_machine_type" || error.code == "qemu_missing" {
            throw PanelError(.notFound, code: error.code, message: error.message)
        }
    }

    private static func refuseBinary(_ binary: String?) throws {
        guard binary == nil else {
            throw PanelError(.invalid, code: "invalid_binary", message: "only QEMU machine types have a binary (add backend=qemu)")
        }
    }

    func resolve(_ name: String) throws -> MachineType {
        do {
            return try machines.resolve(name)
        } catch let error as MachineError {
            throw PanelError(.notFound, code: "unknown_machine_type", message: error.description)
        }
    }
}
