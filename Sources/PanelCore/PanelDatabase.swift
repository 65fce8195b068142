import Foundation
import GRDB

/// The panel's SQLite file (`<data-dir>/emupanel.sqlite`): guests, snapshots and tasks survive
/// restarts. Schema changes are appended as new migrations, never edited.
public final class PanelDatabase: Sendable {
    let queue: DatabaseQueue

    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        queue = try DatabaseQueue(path: path, configuration: configuration)
        try Self.migrator.migrate(queue)
    }

    /// An in-memory database, for tests of the stores.
    public init() throws {
        queue = try DatabaseQueue()
        try Self.migrator.migrate(queue)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("1-guests-snapshots-tasks") { db in
            try db.create(table: "guest") { t in
                t.primaryKey("id", .text)
                t.column("name", .text).notNull().unique()
                t.column("image", .text).notNull()
                t.column("machineType", .text).notNull()
                t.column("memoryMiB", .integer).notNull()
                t.column("state", .text).notNull()
                t.column("icount", .boolean).notNull().defaults(to: false)
                t.column("resumeAtStart", .boolean).notNull().defaults(to: false)
                t.column("createdAt", .datetime).notNull()
                t.column("updatedAt", .datetime).notNull()
            }
            try db.create(table: "snapshot") { t in
                t.column("guestId", .text).notNull().references("guest", onDelete: .cascade)
                t.column("name", .text).notNull()
                t.column("parent", .text)
                t.column("description", .text).notNull().defaults(to: "")
                t.column("machineType", .text).notNull()
                t.column("release", .text).notNull()
                t.column("sizeBytes", .integer).notNull()
                t.column("checksum", .text).notNull()
                t.column("file", .text).notNull()
                t.column("createdAt", .datetime).notNull()
                t.primaryKey(["guestId", "name"])
            }
            try db.create(table: "task") { t in
                t.primaryKey("id", .text)
                t.column("kind", .text).notNull()
                t.column("guestId", .text)
                t.column("status", .text).notNull()
                t.column("progress", .double).notNull()
                t.column("error", .text)
                t.column("detail", .text)
                t.column("createdAt", .datetime).notNull()
                t.column("updatedAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("2-guest-current-snapshot") { db in
            // The snapshot the guest's state descends from: the parent of its next snapshot (libvirt's "current").
            try db.alter(table: "guest") { t in t.add(column: "currentSnapshot", .text) }
        }
        migrator.registerMigration("3-guest-paused-at-save") { db in
            try db.alter(table: "guest") { t in t.add(column: "pausedAtSave", .boolean).notNull().defaults(to: false) }
        }
        migrator.registerMigration("4-guest-incoming") { db in
            try db.alter(table: "guest") { t in t.add(column: "incoming", .boolean).notNull().defaults(to: false) }
        }
        migrator.registerMigration("5-managed-save-checksum-and-handover") { db in
            try db.alter(table: "guest") { t in
                t.add(column: "managedSave", .text)
                t.add(column: "peer", .text)
                t.add(column: "peerGuestId", .text)
                t.add(column: "migrationId", .text)
            }
            // How to reach the peer of a hand-over until it is resolved: kept apart from the guest
            // record, which the API shows, because it holds the peer's token.
            try db.create(table: "handover") { t in
                t.primaryKey("guestId", .text).references("guest", onDelete: .cascade)
                t.column("peerURL", .text).notNull()
                t.column("peerToken", .text).notNull()
                t.column("migrationId", .text).notNull()
            }
        }
        migrator.registerMigration("6-task-log") { db in
            // Each task's log lines (TaskLog.swift), removed with their task.
            try db.create(table: "taskLog") { t in
                t.column("taskId", .text).notNull().references("task", onDelete: .cascade)
                t.column("seq", .integer).notNull()
                t.column("time", .datetime).notNull()
                t.column("message", .text).notNull()
                t.primaryKey(["taskId", "seq"])
            }
        }
        migrator.registerMigration("7-sessions") { db in
            // Browser sessions, by the SHA-256 of their id (SessionRecords).
            try db.create(table: "session") { t in
                t.primaryKey("idHash", .text)
                t.column("csrfToken", .text).notNull()
                t.column("expires", .datetime).notNull()
                t.column("createdAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("8-guest-backend") { db in
            // Which backend runs the guest (SPEC §8), and for QEMU guests the binary's name.
            try db.alter(table: "guest") { t in
                t.add(column: "backend", .text).notNull().defaults(to: "builtin")
                t.add(column: "binary", .text)
            }
        }
        migrator.registerMigration("9-disks") { db in
            // A guest's disks (its tops) and each snapshot's frozen overlays, as JSON arrays.
            try db.alter(table: "guest") { t in t.add(column: "disks", .text).notNull().defaults(to: "[]") }
            try db.alter(table: "snapshot") { t in t.add(column: "disks", .text).notNull().defaults(to: "[]") }
        }
        return migrator
    }

    func read<T: Sendable>(_ body: @Sendable (Database) throws -> T) throws -> T {
        try queue.read(body)
    }

    /// One transaction; a full disk is the panel's `insufficient_storage`, with nothing changed.
    func write<T: Sendable>(_ body: @Sendable (Database) throws -> T) throws -> T {
        do {
            return try queue.write(body)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL {
            throw PanelError.insufficientStorage("the disk holding the panel's database is full; nothing was changed")
        }
    }
}
