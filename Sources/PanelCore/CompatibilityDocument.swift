import EmulatorCore

/// `GET /compatibility` as JSON: columns are releases (oldest first, the current last),
/// rows machine types, each cell says whether state moves each way and, if not, why. For QEMU
/// (`?backend=qemu`, QEMUCompatibility) the columns are QEMU binaries and versions, this host's
/// and its peers', and each row names its binary.
public struct CompatibilityDocument: Encodable, Sendable {
    var currentRelease: String
    var releases: [String]
    var items: [Row]
    /// QEMU: peers whose QEMUs could not be read, with why.
    var unreachablePeers: [String]? = nil

    struct Row: Encodable, Sendable {
        var machineType: String
        var tier: String?
        var cells: [Cell]
        /// QEMU rows: the binary the type is in, and its architecture.
        var binary: String? = nil
        var arch: String? = nil
    }

    struct Cell: Encodable, Sendable {
        var release: String
        var status: String
        var forward: Bool?
        var backward: Bool?
        var reason: String?
        var forwardProblems: [String]
        var backwardProblems: [String]
    }

    init(currentRelease: String, releases: [String], items: [Row], unreachablePeers: [String]? = nil) {
        self.currentRelease = currentRelease
        self.releases = releases
        self.items = items
        self.unreachablePeers = unreachablePeers
    }

    init(_ matrix: CompatibilityMatrix) {
        currentRelease = matrix.currentRelease
        releases = matrix.releases
        items = matrix.rows.map { row in
            Row(
                machineType: row.machineType, tier: row.tier?.rawValue,
                cells: row.cells.map {
                    Cell(
                        release: $0.release, status: $0.status.rawValue, forward: $0.forward, backward: $0.backward,
                        reason: $0.reason, forwardProblems: $0.forwardProblems, backwardProblems: $0.backwardProblems)
                })
        }
    }
}
