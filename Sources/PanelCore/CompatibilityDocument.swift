import EmulatorCore

/// `GET /compatibility` as JSON: columns are releases (oldest first, the current last),
/// rows machine types, each cell says whether state moves each way and, if not, why.
public struct CompatibilityDocument: Encodable, Sendable {
    var currentRelease: String
    var releases: [String]
    var items: [Row]

    struct Row: Encodable, Sendable {
        var machineType: String
        var tier: String?
        var cells: [Cell]
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
