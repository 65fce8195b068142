import Foundation
import RISCV

/// What runs a guest (SPEC §8 "Backends"): the built-in RISC-V core, or QEMU.
public enum Backend: String, Sendable, Codable, CaseIterable {
    case builtin, qemu
}

/// The machine type (always canonical) and, for QEMU, the binary a new guest is placed on.
struct GuestPlacement: Sendable, Equatable {
    var machineType: String
    var binary: String?
}

/// What differs between backends, behind one interface the services use: which machine types
/// and images a guest may have, whether its state may move, how its machine is made, and what a
/// migration's source offers and its destination checks. The order of the services' steps is
/// the same for every backend; only these answers differ.
protocol GuestBackend: Sendable {
    var kind: Backend { get }

    /// Memory a guest of this backend may have (an image may ask for more than the minimum).
    var memoryRange: ClosedRange<Int> { get }

    /// Checks a new guest's machine type against `image` and returns where it goes: the canonical
    /// type (an alias resolved now, SPEC §1) and, for QEMU, the binary (`binary`, or the one
    /// that has the type).
    func place(machineType: String, binary: String?, image: ImageCatalog.Image) throws -> GuestPlacement

    /// Refuses a snapshot, restore or migration of a guest whose machine cannot move its state,
    /// naming every blocker.
    func refuseIfUnmigratable(_ guest: GuestRecord, action: String) throws

    /// The guest's machine, not running yet, with `drives` as its disks (GuestDiskFiles.drives).
    func makeRuntime(
        for guest: GuestRecord, image: ImageCatalog.Image, drives: [DriveConfiguration], console: ConsoleBuffer,
        reports: RuntimeReports
    ) throws -> any GuestRuntime

    /// The backend's part of a migration offer (machine type, versions, the state descriptions'
    /// digest, and with `describing` their text).
    func offer(for guest: GuestRecord, describing: Bool) throws -> [String: JSON]

    /// The source's own checks, before the destination is asked.
    func localChecks(for guest: GuestRecord) -> [IncomingMigrations.Check]

    /// The destination's checks of an offer of this backend: machine type, tier, static check
    /// (throwing `StateDescriptions.needed` when it takes the descriptions' text).
    func checks(of offer: IncomingMigrations.IncomingOffer) throws -> [IncomingMigrations.Check]

    /// Where an offered guest goes here (its checks passed).
    func placement(of offer: IncomingMigrations.IncomingOffer) throws -> GuestPlacement
}

extension GuestBackend {
    /// Whether `image` boots on this backend (and, for QEMU, `arch`).
    func refuseUnlessBootable(_ image: ImageCatalog.Image, arch: String) throws {
        guard image.backends.contains(kind), image.arch == arch else {
            throw PanelError(
                .invalid, code: "image_mismatch",
                message: "image '\(image.id)' is a \(image.arch) image for the \(image.backends.map(\.rawValue).joined(separator: " and ")) backend; "
                    + "this guest is a \(arch) \(kind.rawValue) guest")
        }
    }
}

/// The backends this panel has, by kind.
struct GuestBackends: Sendable {
    let all: [Backend: any GuestBackend]

    func callAsFunction(_ kind: Backend) throws -> any GuestBackend {
        guard let backend = all[kind] else {
            throw PanelError(.invalid, code: "unknown_backend", message: "this panel has no \(kind.rawValue) backend")
        }
        return backend
    }
}
