import Foundation
import QEMUBackend
import VMState

/// `GET /compatibility?backend=qemu` (issue 12 item 7): each machine type of this host's QEMUs
/// against every QEMU of the same architecture here and on the configured peers (their dumps
/// fetched over the peer API), the cells computed with the static checker both ways — what the
/// built-in matrix does with frozen releases, with QEMU versions as the columns.
struct QEMUCompatibility: Sendable {
    let host: QEMUHost
    let peers: [PanelSettings.Peer]

    /// One QEMU binary on one host: its label, and where its machine types and dumps come from.
    private struct Column {
        var label: String
        var arch: String
        var version: QEMUVersion
        var binary: String
        /// Nil for this host's binaries: ask `host`.
        var peer: PeerClient?
        /// The machine types it has, by name (with their tiers, for none).
        var machineTypes: [String: String]
    }

    func document() throws -> CompatibilityDocument {
        let binaries = try host.binaries()
        var columns = binaries.map { binary in
            Column(
                label: "\(binary.name) \(binary.version)", arch: binary.arch, version: binary.version, binary: binary.name, peer: nil,
                machineTypes: Dictionary(binary.machineTypes.map { ($0.name, $0.tier.rawValue) }) { first, _ in first })
        }
        var unreachable: [String] = []
        for peer in peers {
            guard let url = URL(string: peer.url) else { continue }
            let client = PeerClient(baseURL: url, token: peer.token)
            do {
                columns += try Self.columns(of: client, named: peer.name)
            } catch {
                unreachable.append("\(peer.name): \((error as? PanelError)?.message ?? "\(error)")")
            }
        }
        var rows: [CompatibilityDocument.Row] = []
        for binary in binaries {
            for type in binary.machineTypes {
                let ours = "\(binary.name) \(binary.version)"
                let cells = columns.filter { $0.arch == binary.arch }.map { column in
                    cell(type, of: binary, against: column, same: column.peer == nil && column.label == ours)
                }
                rows.append(.init(machineType: type.name, tier: type.tier.rawValue, cells: cells, binary: binary.name, arch: binary.arch))
            }
        }
        return CompatibilityDocument(
            currentRelease: binaries.map { "\($0.name) \($0.version)" }.joined(separator: ", "),
            releases: columns.map(\.label), items: rows, unreachablePeers: unreachable)
    }

    /// A peer's QEMU binaries and their machine types.
    private static func columns(of peer: PeerClient, named name: String) throws -> [Column] {
        let qemu = try peer.get("/host")["qemu"]
        // A peer just started may still be asking its QEMUs: say so rather than show no columns.
        if let status = qemu?["status"], status != .string("ready") {
            throw PanelError(.peer, code: "peer_not_ready", message: "its QEMU discovery is still running; ask again shortly")
        }
        guard case .array(let binaries)? = qemu?["binaries"] else { return [] }
        guard case .array(let types)? = try peer.get("/machine-types?backend=qemu", timeout: 90)["items"] else { return [] }
        return binaries.compactMap { binary -> Column? in
            guard case .string(let binaryName)? = binary["name"], case .string(let arch)? = binary["arch"],
                case .string(let versionText)? = binary["version"], let version = QEMUVersion(text: versionText)
            else { return nil }
            var machineTypes: [String: String] = [:]
            for type in types where type["binary"] == .string(binaryName) {
                if case .string(let typeName)? = type["name"], case .string(let tier)? = type["tier"] { machineTypes[typeName] = tier }
            }
            return Column(
                label: "\(name): \(binaryName) \(versionText)", arch: arch, version: version, binary: binaryName,
                peer: peer, machineTypes: machineTypes)
        }
    }

    private func cell(_ type: QEMUMachineType, of binary: QEMUBinary, against column: Column, same: Bool) -> CompatibilityDocument.Cell {
        func cell(
            _ status: String, forward: Bool? = nil, backward: Bool? = nil, reason: String?,
            forwardProblems: [String] = [], backwardProblems: [String] = []
        ) -> CompatibilityDocument.Cell {
            .init(
                release: column.label, status: status, forward: forward, backward: backward, reason: reason,
                forwardProblems: forwardProblems, backwardProblems: backwardProblems)
        }
        if type.tier == .none {
            return cell("blocked", reason: type.blockers.map(\.description).joined(separator: "; "))
        }
        if same { return cell("same", forward: true, backward: true, reason: nil) }
        guard let theirTier = column.machineTypes[type.name] else {
            return cell("absent", reason: "\(column.label) has no \(type.name)")
        }
        if theirTier == "none" { return cell("blocked", reason: "\(type.name) has a migration blocker in \(column.label)") }
        let ours: String
        let theirs: String
        do {
            ours = try host.vmstateDump(binary, machineType: type.name)
            theirs = try dump(type.name, in: column)
        } catch {
            return cell("unchecked", reason: (error as? PanelError)?.message ?? "\(error)")
        }
        // The same QEMU build writes the same dump: nothing to check (most peers run the same packages).
        let forward = ours == theirs ? [] : Self.problems(old: ours, new: theirs)
        let backward = ours == theirs ? [] : Self.problems(old: theirs, new: ours)
        let tier = QEMUGuestBackend.tierCheck(type, ours: column.version, theirs: binary.version)
        let status =
            forward.isEmpty && backward.isEmpty
            ? (tier.ok ? "compatible" : "conditional")
            : forward.isEmpty ? "forwardOnly" : "incompatible"
        return cell(
            status, forward: forward.isEmpty, backward: backward.isEmpty, reason: tier.ok ? nil : tier.detail,
            forwardProblems: forward, backwardProblems: backward)
    }

    private func dump(_ machineType: String, in column: Column) throws -> String {
        guard let peer = column.peer else {
            return try host.vmstateDump(try host.binary(named: column.binary), machineType: machineType)
        }
        let escaped = machineType.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? machineType
        let bytes = try peer.getBytes("/machine-types/\(escaped)/vmstate?backend=qemu&binary=\(column.binary)", timeout: 90)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// What the static checker finds from `old` to `new`, less subsections one side lacks (they
    /// travel only when needed), as the pre-flight judges it.
    private static func problems(old: String, new: String) -> [String] {
        do {
            return try VMStateCheck.check(old: old, new: new).problems.filter { !$0.isMissingSubsection }.map(\.message)
        } catch {
            return ["a state description is unreadable: \(error)"]
        }
    }
}
