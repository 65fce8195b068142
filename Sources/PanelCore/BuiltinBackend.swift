import EmulatorCore
import Foundation
import RISCV
import VMState

/// The built-in RISC-V core as a backend: machine types from the board module's registry, tiers
/// computed from their device lists, state descriptions from the devices themselves.
struct BuiltinBackend: GuestBackend {
    let machines: MachineRegistry
    /// The machine types' state descriptions for offers, made once.
    let described = StateDescriptionsCache()

    var kind: Backend { .builtin }

    /// Up to what the virt board maps (VirtMachine.maximumMemoryMiB), so a created guest can start.
    var memoryRange: ClosedRange<Int> { GuestLifecycle.memoryRange }

    func resolve(_ machineType: String) throws -> MachineType {
        do {
            return try machines.resolve(machineType)
        } catch {
            throw PanelError(
                .invalid, code: "unknown_machine_type",
                message: "unknown machine type '\(machineType)'; known: \(machines.machineTypes.map(\.name).joined(separator: ", "))")
        }
    }

    func place(machineType: String, binary: String?, image: ImageCatalog.Image) throws -> GuestPlacement {
        guard binary == nil else {
            throw PanelError(.invalid, code: "invalid_binary", message: "only QEMU guests name a binary")
        }
        try refuseUnlessBootable(image, arch: "riscv64")
        return GuestPlacement(machineType: try resolve(machineType).name, binary: nil)
    }

    func refuseIfUnmigratable(_ guest: GuestRecord, action: String) throws {
        let type = try resolve(guest.machineType)
        guard type.tier == .none else { return }
        throw PanelError(
            .invalid, code: "not_migratable",
            message: "\(type.name) cannot \(action): " + type.blockers.map(\.description).joined(separator: "; "))
    }

    func makeRuntime(
        for guest: GuestRecord, image: ImageCatalog.Image, drives: [DriveConfiguration], console: ConsoleBuffer,
        reports: RuntimeReports
    ) throws -> any GuestRuntime {
        try BuiltinRuntime(
            guest: guest, image: image, machineType: try resolve(guest.machineType), drives: drives, console: console,
            reports: reports)
    }

    func offer(for guest: GuestRecord, describing: Bool) throws -> [String: JSON] {
        let type = try resolve(guest.machineType)
        let described = descriptions(of: type)
        var fields: [String: JSON] = [
            "machineType": .string(type.name), "release": .string(Release.current), "vmstateSHA256": .string(described.sha256),
        ]
        if describing { fields["vmstate"] = .string(described.compact) }
        return fields
    }

    private func descriptions(of type: MachineType) -> StateDescriptions {
        described.descriptions(type.name) { type.vmstateDump() }
    }

    func localChecks(for guest: GuestRecord) -> [IncomingMigrations.Check] {
        guard let type = try? resolve(guest.machineType) else {
            return [.init(name: "machine type", ok: false, detail: "\(guest.machineType) is unknown here")]
        }
        return [
            .init(
                name: "tier", ok: type.tier != .none,
                detail: type.tier == .none ? type.blockers.map(\.description).joined(separator: "; ") : "\(type.name) is \(type.tier.rawValue)")
        ]
    }

    func checks(of offer: IncomingMigrations.IncomingOffer) throws -> [IncomingMigrations.Check] {
        var checks: [IncomingMigrations.Check] = []
        let type = machines.machineTypes.first { $0.name == offer.machineType }
        checks.append(
            .init(
                name: "machine type", ok: type != nil,
                detail: type != nil
                    ? "\(offer.machineType) is known here (release \(Release.current))"
                    : "release \(Release.current) here does not know \(offer.machineType)"))
        guard let type else { return checks }
        checks.append(
            .init(
                name: "tier", ok: type.tier != .none,
                detail: type.tier == .none ? type.blockers.map(\.description).joined(separator: "; ") : type.tier.rawValue))
        checks += try IncomingMigrations.staticChecks(
            of: offer, theirLabel: offer.release, ours: descriptions(of: type), ourLabel: Release.current)
        return checks
    }

    func placement(of offer: IncomingMigrations.IncomingOffer) throws -> GuestPlacement {
        GuestPlacement(machineType: try resolve(offer.machineType).name, binary: nil)
    }
}
