import Crypto
import Foundation
import GRDB

/// A browser session as the database keeps it: the SHA-256 of its id, never the id itself, so a
/// copy of the database (a backup, a support bundle) signs nobody in. The CSRF token is kept as
/// is: the page asks for it again after a reload, and it is worthless without the cookie.
public struct SessionRecord: Sendable, Codable, Equatable, FetchableRecord, PersistableRecord {
    public var idHash: String
    public var csrfToken: String
    public var expires: Date
    public var createdAt: Date

    public static let databaseTableName = "session"

    public init(idHash: String, csrfToken: String, expires: Date, createdAt: Date) {
        self.idHash = idHash
        self.csrfToken = csrfToken
        self.expires = expires
        self.createdAt = createdAt
    }
}

/// Browser sessions in SQLite, so a panel restart signs nobody out (issue 15 item 9).
public final class SessionRecords: Sendable {
    let database: PanelDatabase

    public init(database: PanelDatabase) {
        self.database = database
    }

    /// What a session id is stored as: SHA-256, hex.
    public static func hash(_ id: String) -> String {
        SHA256.hash(data: Data(id.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Sessions still valid at `now`; expired ones are deleted on the way.
    public func live(at now: Date) throws -> [SessionRecord] {
        try database.write { db in
            try SessionRecord.filter(Column("expires") <= now).deleteAll(db)
            return try SessionRecord.order(Column("createdAt")).fetchAll(db)
        }
    }

    public func insert(_ record: SessionRecord) throws {
        try database.write { db in try record.insert(db) }
    }

    public func setExpiry(idHash: String, _ expires: Date) throws {
        try database.write { db in
            _ = try SessionRecord.filter(Column("idHash") == idHash).updateAll(db, Column("expires").set(to: expires))
        }
    }

    public func delete(idHash: String) throws {
        try database.write { db in _ = try SessionRecord.deleteOne(db, key: idHash) }
    }
}
