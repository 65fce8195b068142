import Foundation
import GRDB

/// A guest's lifecycle as the API names it (SPEC §5, §8).
public enum GuestState: String, Sendable, Codable, CaseIterable {
    case stopped, running, paused, migrating, migrated
    /// A migration's hand-over was interrupted: the guest may run on `peer`. It neither starts
    /// nor resumes here until that is resolved (asking the peer, or a person confirming).
    case handoverUnknown
}

/// A guest as stored and as the API shows it.
public struct GuestRecord: Sendable, Codable, Equatable, FetchableRecord, PersistableRecord {
    public var id: String
    public var name: String
    /// An image id from `/images`, never a host path.
    public var image: String
    /// Always canonical (`virt-1.0`, never the alias `virt`).
    public var machineType: String
    public var memoryMiB: Int
    public var state: GuestState
    /// Deterministic clock: time from retired instructions (QEMU's -icount).
    public var icount: Bool
    /// Saved by the panel at shutdown while running; resumed at the next start (libvirt's managed save).
    public var resumeAtStart: Bool
    /// The checksum of the managed save while there is one to start from; nil when there is none
    /// (a file without it is stale and never loaded).
    public var managedSave: String? = nil
    /// The guest was paused when it was saved, and comes back paused.
    public var pausedAtSave: Bool
    /// The snapshot this guest's state descends from; the next snapshot's parent.
    public var currentSnapshot: String?
    /// A migration coming in holds this record until the guest starts here; if the panel stops
    /// first, the next start removes it (the source still has the guest).
    public var incoming = false
    /// The other host of this guest's last migration (its base URL): where it went, or where it
    /// may run while the hand-over is unknown.
    public var peer: String? = nil
    /// The guest's id on `peer`, once the peer said it started it.
    public var peerGuestId: String? = nil
    /// Names the migration on both hosts: the source asks the destination about it by this id.
    public var migrationId: String? = nil
    /// Its virtio disks (virt-1.2 on), in drive order; empty for an image without a disk.
    public var disks: [GuestDisk] = []
    public var createdAt: Date
    public var updatedAt: Date
    /// What runs it (SPEC §8 "Backends"); with `machineType` the pair a guest records.
    public var backend: Backend = .builtin
    /// The QEMU binary a QEMU guest runs on (`qemu-system-riscv64`), by name; nil for built-in guests.
    public var binary: String? = nil

    public static let databaseTableName = "guest"

    /// `managedSave` of a save whose checksum was never recorded (the panel died between writing
    /// it and recording it): the file is whole — it is renamed into place only once synced — but
    /// there is no sum to check it against.
    public static let uncheckedSave = "unchecked"
}

/// Names a person gives guests and snapshots: letters, digits, `-_.`, 1–40 characters (SPEC §5).
enum Names {
    static func validate(_ name: String, what: String) throws {
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }
        guard (1...40).contains(name.utf8.count), allowed, name != ".", name != ".." else {
            throw PanelError(
                .invalid, code: "invalid_name",
                message: "\(what) names are 1–40 characters of letters, digits, '-', '_' and '.'")
        }
    }
}

/// Guests in SQLite.
struct GuestStore: Sendable {
    let database: PanelDatabase

    func all() throws -> [GuestRecord] {
        try database.read { db in try GuestRecord.order(Column("createdAt")).fetchAll(db) }
    }

    func get(_ id: String) throws -> GuestRecord {
        guard let guest = try database.read({ db in try GuestRecord.fetchOne(db, key: id) }) else {
            throw PanelError.notFound("no guest \(id)")
        }
        return guest
    }

    func insert(_ guest: GuestRecord) throws {
        try database.write { db in
            if try GuestRecord.filter(Column("name") == guest.name).fetchCount(db) > 0 {
                throw PanelError(.conflict, code: "name_taken", message: "a guest named '\(guest.name)' exists")
            }
            try guest.insert(db)
        }
    }

    /// Applies `change` in one transaction and returns the stored result.
    @discardableResult
    func update(_ id: String, _ change: @escaping @Sendable (inout GuestRecord) throws -> Void) throws -> GuestRecord {
        try database.write { db in
            guard var guest = try GuestRecord.fetchOne(db, key: id) else { throw PanelError.notFound("no guest \(id)") }
            let before = guest
            try change(&guest)
            if guest.name != before.name,
                try GuestRecord.filter(Column("name") == guest.name && Column("id") != id).fetchCount(db) > 0
            {
                throw PanelError(.conflict, code: "name_taken", message: "a guest named '\(guest.name)' exists")
            }
            if guest != before {
                guest.updatedAt = Date()
                try guest.update(db)
            }
            return guest
        }
    }

    func delete(_ id: String) throws {
        _ = try database.write { db in try GuestRecord.deleteOne(db, key: id) }
    }
}
