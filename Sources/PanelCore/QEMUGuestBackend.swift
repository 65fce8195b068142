import EmulatorCore
import Foundation
import QEMUBackend
import RISCV
import VMState

/// QEMU as a backend (SPEC §8): machine types and tiers from discovery (`QEMUHost`), a guest's
/// machine a QEMU process (`QEMURuntime`), state descriptions QEMU's own `-dump-vmstate`. A
/// guest records its binary by name; the pair (binary, machine type) is what it runs on, since
/// one name may be in several binaries (`pc-q35-7.2` in qemu-system-x86_64 and its microvm build).
struct QEMUGuestBackend: GuestBackend {
    let host: QEMUHost
    /// Where a guest's QEMU runs: its directory (sockets, log) under the data dir.
    let guestDirectory: @Sendable (String) -> String

    var kind: Backend { .qemu }

    /// QEMU takes far more than the built-in board; a guest is held to this host's RAM.
    var memoryRange: ClosedRange<Int> { 16...max(16, Int(ProcessInfo.processInfo.physicalMemory >> 20)) }

    func place(machineType: String, binary: String?, image: ImageCatalog.Image) throws -> GuestPlacement {
        // A binary of the image's architecture first; else the type wherever it is, so a type that
        // exists only for another architecture is refused as the image's mismatch, not as unknown.
        let matching = binary == nil ? try? host.machineType(machineType, arch: image.arch) : nil
        let (found, type) = try matching ?? host.machineType(machineType, binary: binary)
        try refuseUnlessBootable(image, arch: found.arch)
        return GuestPlacement(machineType: type.name, binary: found.name)
    }

    /// The guest's binary and machine type as discovery found them here.
    func lookup(_ guest: GuestRecord) throws -> (QEMUBinary, QEMUMachineType) {
        guard let binary = guest.binary else {
            throw PanelError(.invalid, code: "qemu_missing", message: "guest \(guest.name) names no QEMU binary")
        }
        return try host.machineType(guest.machineType, binary: binary)
    }

    func refuseIfUnmigratable(_ guest: GuestRecord, action: String) throws {
        let (binary, type) = try lookup(guest)
        guard type.tier == .none else { return }
        throw PanelError(
            .invalid, code: "not_migratable",
            message: "\(type.name) of \(binary.name) cannot \(action): " + type.blockers.map(\.description).joined(separator: "; "))
    }

    func configuration(for guest: GuestRecord, image: ImageCatalog.Image) throws -> QEMUGuestConfiguration {
        let (binary, type) = try lookup(guest)
        try refuseUnlessBootable(image, arch: binary.arch)
        // Firmware and kernel from the catalogue: OpenSBI + U-Boot, a test guest started in M-mode
        // with `-bios none`, or (no paths) QEMU's own firmware.
        let kernel = image.kernelPath.isEmpty ? nil : image.kernelPath
        return QEMUGuestConfiguration(
            binary: binary.path, machineType: type.name, memoryMiB: guest.memoryMiB,
            bios: image.biosPath ?? (kernel == nil ? nil : "none"), kernel: kernel,
            name: guest.name, sandbox: binary.sandbox)
    }

    func makeRuntime(
        for guest: GuestRecord, image: ImageCatalog.Image, drives: [DriveConfiguration], console: ConsoleBuffer,
        reports: RuntimeReports
    ) throws -> any GuestRuntime {
        guard drives.isEmpty else { throw QEMURuntime.noDisks }
        let directory = guestDirectory(guest.id)
        return QEMURuntime(
            configuration: try configuration(for: guest, image: image), directory: directory,
            logPath: directory + "/qemu.log", console: console, reports: reports)
    }

    func offer(for guest: GuestRecord, describing: Bool) throws -> [String: JSON] {
        let (binary, type) = try lookup(guest)
        let described = try host.stateDescriptions(binary, machineType: type.name)
        var fields: [String: JSON] = [
            "machineType": .string(type.name), "release": .string(Release.current), "binary": .string(binary.name),
            "arch": .string(binary.arch), "qemuVersion": .string(binary.version.description),
            "vmstateSHA256": .string(described.sha256),
        ]
        if describing { fields["vmstate"] = .string(described.compact) }
        return fields
    }

    func localChecks(for guest: GuestRecord) -> [IncomingMigrations.Check] {
        do {
            let (binary, type) = try lookup(guest)
            return [
                .init(
                    name: "tier", ok: type.tier != .none,
                    detail: type.tier == .none
                        ? type.blockers.map(\.description).joined(separator: "; ")
                        : "\(type.name) of \(binary.name) \(binary.version) is \(type.tier.rawValue)")
            ]
        } catch {
            return [.init(name: "QEMU", ok: false, detail: (error as? PanelError)?.message ?? "\(error)")]
        }
    }

    /// The destination's side of SPEC §8 "QEMU tiers": a QEMU for the architecture, the machine
    /// type in it, the tier's rule on the two QEMU versions, and the static checker both ways
    /// between the two QEMUs' `-dump-vmstate`.
    func checks(of offer: IncomingMigrations.IncomingOffer) throws -> [IncomingMigrations.Check] {
        guard let arch = offer.arch, let theirVersion = offer.qemuVersion.flatMap(QEMUVersion.init(text:)) else {
            return [.init(name: "offer", ok: false, detail: "the source did not say which QEMU architecture and version it runs")]
        }
        let binaries: [QEMUBinary]
        do {
            binaries = try host.binaries().filter { $0.arch == arch }
        } catch {
            return [.init(name: "QEMU", ok: false, detail: (error as? PanelError)?.message ?? "\(error)")]
        }
        guard !binaries.isEmpty else {
            return [.init(name: "QEMU", ok: false, detail: "this host has no QEMU for \(arch)")]
        }
        var checks: [IncomingMigrations.Check] = [
            .init(name: "QEMU", ok: true, detail: binaries.map { "\($0.name) \($0.version)" }.joined(separator: ", "))
        ]
        guard let (binary, type) = try? destination(of: offer, arch: arch), type.name == offer.machineType else {
            checks.append(
                .init(
                    name: "machine type", ok: false,
                    detail: "no \(arch) QEMU here (\(binaries.map { "\($0.name) \($0.version)" }.joined(separator: ", "))) has \(offer.machineType)"))
            return checks
        }
        checks.append(.init(name: "machine type", ok: true, detail: "\(type.name) is in \(binary.name) \(binary.version) here"))
        checks.append(Self.tierCheck(type, ours: binary.version, theirs: theirVersion))
        let ours: StateDescriptions
        do {
            ours = try host.stateDescriptions(binary, machineType: type.name)
        } catch {
            checks.append(.init(name: "static check", ok: false, detail: (error as? PanelError)?.message ?? "\(error)"))
            return checks
        }
        checks += try IncomingMigrations.staticChecks(
            of: offer, theirLabel: "QEMU \(theirVersion)", ours: ours, ourLabel: "QEMU \(binary.version)")
        return checks
    }

    /// The promise of the type's tier, for a guest coming from QEMU `theirs` to QEMU `ours`.
    static func tierCheck(_ type: QEMUMachineType, ours: QEMUVersion, theirs: QEMUVersion) -> IncomingMigrations.Check {
        switch type.tier {
        case .none:
            return .init(
                name: "tier", ok: false, detail: "\(type.name) is not migratable: " + type.blockers.map(\.description).joined(separator: "; "))
        case .versioned:
            return ours >= theirs
                ? .init(name: "tier", ok: true, detail: "\(type.name) is versioned: QEMU \(theirs) → \(ours) is forward")
                : .init(
                    name: "tier", ok: false,
                    detail: "\(type.name) is versioned, which QEMU promises only forward: QEMU \(ours) here is older than the source's \(theirs)")
        case .unversioned:
            return ours == theirs
                ? .init(name: "tier", ok: true, detail: "\(type.name) is unversioned and both hosts run QEMU \(ours)")
                : .init(
                    name: "tier", ok: false,
                    detail: "\(type.name) is unversioned: it migrates between the same QEMU version only (source \(theirs), here \(ours))")
        }
    }

    func placement(of offer: IncomingMigrations.IncomingOffer) throws -> GuestPlacement {
        guard let arch = offer.arch else {
            throw PanelError(.invalid, code: "migration_refused", message: "the source did not say which QEMU architecture it runs")
        }
        let (binary, type) = try destination(of: offer, arch: arch)
        return GuestPlacement(machineType: type.name, binary: binary.name)
    }

    /// The binary an offered guest runs on here: the source's binary by name when this host has it
    /// with the type, else any of the architecture that has it.
    private func destination(of offer: IncomingMigrations.IncomingOffer, arch: String) throws -> (QEMUBinary, QEMUMachineType) {
        if let name = offer.binary, let found = try? host.machineType(offer.machineType, binary: name, arch: arch) { return found }
        return try host.machineType(offer.machineType, arch: arch)
    }
}
