import Foundation
import GRDB

/// A snapshot: one QEVM file of RAM and device state, plus what SPEC §5 asks to record.
public struct SnapshotRecord: Sendable, Codable, Equatable, FetchableRecord, PersistableRecord {
    public var guestId: String
    public var name: String
    /// The snapshot this one descends from; snapshots form a tree.
    public var parent: String?
    public var description: String
    /// Canonical machine type of the state inside.
    public var machineType: String
    /// The emupanel release that wrote it.
    public var release: String
    public var sizeBytes: Int64
    /// The file's checksum: `xxh128:` and its XXH3-128 in hex, or (earlier releases) its SHA-256 in hex.
    public var checksum: String
    /// File name inside the guest's snapshot directory.
    public var file: String
    public var createdAt: Date
    /// The overlay each disk wrote until this snapshot, frozen by it (external snapshots).
    public var disks: [SnapshotDisk] = []

    public static let databaseTableName = "snapshot"
}

/// Snapshots in SQLite.
struct SnapshotStore: Sendable {
    let database: PanelDatabase

    func all(guestId: String) throws -> [SnapshotRecord] {
        try database.read { db in
            try SnapshotRecord.filter(Column("guestId") == guestId).order(Column("createdAt")).fetchAll(db)
        }
    }

    func count() throws -> Int {
        try database.read { db in try SnapshotRecord.fetchCount(db) }
    }

    /// Every snapshot that froze disk layers (their files count as snapshot storage too).
    func allFreezingDisks() throws -> [SnapshotRecord] {
        try database.read { db in try SnapshotRecord.filter(Column("disks") != "[]").fetchAll(db) }
    }

    func totalBytes() throws -> Int64 {
        try database.read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(sizeBytes), 0) FROM snapshot") ?? 0 }
    }

    func get(guestId: String, name: String) throws -> SnapshotRecord {
        guard
            let snapshot = try database.read({ db in
                try SnapshotRecord.fetchOne(db, key: ["guestId": guestId, "name": name])
            })
        else {
            throw PanelError.notFound("guest \(guestId) has no snapshot '\(name)'")
        }
        return snapshot
    }

    /// Records a snapshot and, with `current`, makes it the one its guest descends from — in one
    /// transaction, so no crash can leave one change without the other.
    func insert(_ snapshot: SnapshotRecord, current: Bool = false, guestDisks: [GuestDisk]? = nil) throws {
        try database.write { db in
            if try SnapshotRecord.fetchOne(db, key: ["guestId": snapshot.guestId, "name": snapshot.name]) != nil {
                throw PanelError(.conflict, code: "name_taken", message: "a snapshot named '\(snapshot.name)' exists")
            }
            try snapshot.insert(db)
            if current {
                try db.execute(
                    sql: "UPDATE guest SET currentSnapshot = ?, updatedAt = ? WHERE id = ?",
                    arguments: [snapshot.name, Date(), snapshot.guestId])
            }
            if let guestDisks {
                try db.execute(
                    sql: "UPDATE guest SET disks = ?, updatedAt = ? WHERE id = ?",
                    arguments: [String(decoding: try JSONEncoder().encode(guestDisks), as: UTF8.self), Date(), snapshot.guestId])
            }
        }
    }

    func updateDescription(guestId: String, name: String, description: String) throws -> SnapshotRecord {
        try database.write { db in
            guard var snapshot = try SnapshotRecord.fetchOne(db, key: ["guestId": guestId, "name": name]) else {
                throw PanelError.notFound("guest \(guestId) has no snapshot '\(name)'")
            }
            snapshot.description = description
            try snapshot.update(db)
            return snapshot
        }
    }

    /// Deletes one snapshot; its children are re-parented to its parent so the tree stays whole.
    func delete(guestId: String, name: String) throws -> SnapshotRecord {
        try database.write { db in
            guard let snapshot = try SnapshotRecord.fetchOne(db, key: ["guestId": guestId, "name": name]) else {
                throw PanelError.notFound("guest \(guestId) has no snapshot '\(name)'")
            }
            try db.execute(
                sql: "UPDATE snapshot SET parent = ? WHERE guestId = ? AND parent = ?",
                arguments: [snapshot.parent, guestId, name])
            try db.execute(
                sql: "UPDATE guest SET currentSnapshot = ? WHERE id = ? AND currentSnapshot = ?",
                arguments: [snapshot.parent, guestId, name])
            _ = try SnapshotRecord.deleteOne(db, key: ["guestId": guestId, "name": name])
            return snapshot
        }
    }
}
