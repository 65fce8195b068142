// The machine type × release matrix of `GET /compatibility`: for every frozen
// release, QEMU's static checker runs both ways between that release's dump and the
// current description (SPEC §2: "the checker must pass in both directions for every
// versioned type they share"). Computed, never stored, so it cannot go stale.
import VMState

public struct CompatibilityMatrix: Sendable {
    public enum Status: String, Sendable {
        /// The current release itself: state moves between its hosts.
        case same
        /// The checker passes both ways.
        case compatible
        /// Forward passes; backward fails only on subsections the old release lacks. They
        /// travel only when `needed`, which compat properties keep off for old versions.
        case conditional
        /// Forward passes, backward does not: expected for unversioned types.
        case forwardOnly
        /// The checker fails forward (or the frozen dump cannot be read).
        case incompatible
        /// The release did not have this machine type: nothing to move forward, and it
        /// cannot receive this type's guests.
        case absent
        /// The release had this machine type; the current one no longer does.
        case removed
        /// Tier none: snapshot and migration are refused in every release.
        case blocked
        /// Unversioned types are not frozen, so nothing can be checked ahead of time.
        case unchecked
    }

    public struct Cell: Sendable {
        public let release: String
        public let status: Status
        /// From that release to the current one; nil when unknown ahead of time.
        public let forward: Bool?
        /// From the current release back to that one.
        public let backward: Bool?
        /// Why state does not move (or moves only conditionally); nil when it simply moves.
        public let reason: String?
        public let forwardProblems: [String]
        public let backwardProblems: [String]
    }

    public struct Row: Sendable {
        public let machineType: String
        /// Nil for a type only frozen releases know.
        public let tier: MigrationTier?
        public let cells: [Cell]
    }

    public let currentRelease: String
    /// Column order: frozen releases oldest first, the current release last.
    public let releases: [String]
    public let rows: [Row]

    public init(registry: MachineRegistry, currentRelease: String, frozen: [FrozenRelease]) {
        self.currentRelease = currentRelease
        let others = frozen.filter { $0.release != currentRelease }
        let frozenCurrent = frozen.first { $0.release == currentRelease }
        releases = others.map(\.release) + [currentRelease]
        var rows = registry.machineTypes.map { type in
            Row(
                machineType: type.name, tier: type.tier,
                cells: others.map { Self.cell(type, release: $0.release, frozenDump: $0.dumps[type.name]) }
                    + [Self.currentCell(type, release: currentRelease, frozenDump: frozenCurrent?.dumps[type.name])])
        }
        let known = Set(registry.machineTypes.map(\.name))
        let removed = Set(frozen.flatMap(\.dumps.keys)).subtracting(known).sorted()
        rows += removed.map { name in
            let reason = "release \(currentRelease) no longer knows \(name)"
            let gone = { (release: String, status: Status) in
                Cell(
                    release: release, status: status, forward: false, backward: false, reason: reason,
                    forwardProblems: [], backwardProblems: [])
            }
            return Row(
                machineType: name, tier: nil,
                cells: others.map { gone($0.release, $0.dumps[name] == nil ? .absent : .removed) }
                    + [gone(currentRelease, .removed)])
        }
        self.rows = rows
    }

    private static func blockedCell(_ type: MachineType, release: String) -> Cell {
        Cell(
            release: release, status: .blocked, forward: false, backward: false,
            reason: type.blockers.map(\.description).joined(separator: "; "), forwardProblems: [], backwardProblems: [])
    }

    private static func currentCell(_ type: MachineType, release: String, frozenDump: String?) -> Cell {
        if type.tier == .none { return blockedCell(type, release: release) }
        // When the current release is itself frozen, its descriptions must still match.
        if let frozenDump {
            let checked = cell(type, release: release, frozenDump: frozenDump)
            if checked.status != .compatible { return checked }
        }
        return Cell(
            release: release, status: .same, forward: true, backward: true, reason: nil,
            forwardProblems: [], backwardProblems: [])
    }

    private static func cell(_ type: MachineType, release: String, frozenDump: String?) -> Cell {
        if type.tier == .none { return blockedCell(type, release: release) }
        guard let frozenDump else {
            if type.tier == .unversioned {
                return Cell(
                    release: release, status: .unchecked, forward: nil, backward: nil,
                    reason: "unversioned types are not frozen; a restore or migration from release \(release) "
                        + "checks every device version before applying state",
                    forwardProblems: [], backwardProblems: [])
            }
            return Cell(
                release: release, status: .absent, forward: false, backward: false,
                reason: "release \(release) does not know \(type.name)", forwardProblems: [], backwardProblems: [])
        }
        let current = type.vmstateDump()
        let forward: VMStateCheckResult
        let backward: VMStateCheckResult
        do {
            forward = try VMStateCheck.check(old: frozenDump, new: current)
            backward = try VMStateCheck.check(old: current, new: frozenDump)
        } catch {
            return Cell(
                release: release, status: .incompatible, forward: false, backward: false,
                reason: "the frozen dump \(release)/\(type.name)\(FrozenRelease.dumpSuffix) cannot be read: \(error)",
                forwardProblems: [], backwardProblems: [])
        }
        let forwardProblems = forward.problems.map(\.message)
        let backwardProblems = backward.problems.map(\.message)
        func summary(_ problems: [String]) -> String {
            problems[0] + (problems.count > 1 ? " (and \(problems.count - 1) more)" : "")
        }
        let status: Status
        let reason: String?
        if !forwardProblems.isEmpty {
            status = .incompatible
            reason = "from \(release): " + summary(forwardProblems)
        } else if backwardProblems.isEmpty {
            status = .compatible
            reason = nil
        } else if backward.problems.allSatisfy(\.isMissingSubsection) {
            status = .conditional
            reason = "back to \(release) only while the subsections it lacks are not needed: " + summary(backwardProblems)
        } else {
            status = .forwardOnly
            reason = "back to \(release): " + summary(backwardProblems)
        }
        return Cell(
            release: release, status: status, forward: forwardProblems.isEmpty,
            backward: status == .compatible || status == .conditional, reason: reason,
            forwardProblems: forwardProblems, backwardProblems: backwardProblems)
    }
}
