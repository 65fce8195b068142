import Foundation
import GRDB
import Logging
import Synchronization

/// A migration's hand-over whose outcome this host does not know: GO went out (or was about to)
/// and no STARTED came back — the destination may run the guest, so it must not run here by
/// itself (SPEC §8 "Hand-over unknown"). The guest is recorded `handoverUnknown`; this row keeps
/// what it takes to ask the destination (its URL and token), apart from the guest record the API
/// shows.
struct HandOverRecord: Sendable, Codable, FetchableRecord, PersistableRecord {
    var guestId: String
    var peerURL: String
    var peerToken: String
    var migrationId: String

    static let databaseTableName = "handover"
}

/// What a destination says of a migration it was offered (`GET /migrations/incoming/{id}`).
public struct HandOverStatus: Sendable, Codable, Equatable {
    public var migrationId: String
    /// The guest's record there, if it has one for this migration.
    public var guestId: String?
    public var state: GuestState?

    public init(migrationId: String, guestId: String?, state: GuestState?) {
        self.migrationId = migrationId
        self.guestId = guestId
        self.state = state
    }

    /// What the answer settles: the guest runs there, never started there, or not yet known.
    enum Verdict: Equatable { case runsThere(guestId: String), neverStarted, undecided }

    var verdict: Verdict {
        guard let guestId, let state else { return .neverStarted }
        // A record still reserved for the stream is not the guest's yet; any other is: the
        // destination started it (even if it stopped since).
        return state == .migrating ? .undecided : .runsThere(guestId: guestId)
    }
}

/// Settles unknown hand-overs: by asking the destination (at once when STARTED did not come, at
/// start-up, and every half minute while any is unknown), or by a person's confirmed decision.
public final class HandOvers: Sendable {
    let registry: GuestRegistry
    let logger: Logger
    private let wake = DispatchSemaphore(value: 0)
    private let running = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    static let retryInterval = 30.0

    init(registry: GuestRegistry, logger: Logger) {
        self.registry = registry
        self.logger = logger
    }

    private var database: PanelDatabase { registry.store.database }

    public enum Side: String, Sendable, Codable { case here, peer }

    /// Records the guest's hand-over as unknown before GO goes out: from now until the destination
    /// confirms, a crash or a lost answer leaves it unable to run here by itself.
    func begin(guestId: String, peer: PeerClient, migrationId: String) throws {
        let record = HandOverRecord(guestId: guestId, peerURL: peer.baseURL.absoluteString, peerToken: peer.token, migrationId: migrationId)
        let guest = try database.write { db -> GuestRecord in
            try record.save(db)
            guard var guest = try GuestRecord.fetchOne(db, key: guestId) else { throw PanelError.notFound("no guest \(guestId)") }
            guest.state = .handoverUnknown
            guest.peer = record.peerURL
            guest.migrationId = migrationId
            guest.updatedAt = Date()
            try guest.update(db)
            return guest
        }
        registry.events.publish("guest.state", subject: guestId, data: GuestRegistry.eventData(guest))
    }

    /// The hand-over ended with `state` (`migrated` when the destination runs it): one write for
    /// the record and the forgotten row.
    @discardableResult
    func finish(guestId: String, state: GuestState, peerGuestId: String? = nil) throws -> GuestRecord {
        let guest = try database.write { db -> GuestRecord in
            _ = try HandOverRecord.deleteOne(db, key: guestId)
            guard var guest = try GuestRecord.fetchOne(db, key: guestId) else { throw PanelError.notFound("no guest \(guestId)") }
            guest.state = state
            if let peerGuestId { guest.peerGuestId = peerGuestId }
            guest.updatedAt = Date()
            try guest.update(db)
            return guest
        }
        registry.events.publish("guest.state", subject: guestId, data: GuestRegistry.eventData(guest))
        return guest
    }

    /// Asks the destination what became of the migration (a few seconds at most).
    func ask(_ record: HandOverRecord) -> HandOverStatus.Verdict {
        guard let url = URL(string: record.peerURL) else { return .undecided }
        let peer = PeerClient(baseURL: url, token: record.peerToken)
        do {
            let answer = try peer.get("/migrations/incoming/\(record.migrationId)", timeout: 5)
            let data = try JSONEncoder().encode(answer)
            return try JSONDecoder().decode(HandOverStatus.self, from: data).verdict
        } catch let error as PeerError where error.status == 404 {
            // A destination that knows nothing of it never started it; one that does not know
            // the route (an older release) answers 404 with another code and settles nothing.
            return error.code == "unknown_migration" ? .neverStarted : .undecided
        } catch {
            logger.info("the destination of an unknown hand-over did not answer", metadata: ["guest": "\(record.guestId)", "error": "\(error)"])
            return .undecided
        }
    }

    func record(of guestId: String) throws -> HandOverRecord? {
        try database.read { db in try HandOverRecord.fetchOne(db, key: guestId) }
    }

    /// Settles one guest's hand-over: `side` is a person's confirmed decision; without one the
    /// destination is asked, and an answer that settles nothing is a conflict naming what to do.
    public func resolve(_ id: String, runsOn side: Side?) throws -> GuestRecord {
        try registry.withLifecycle(id) { _ in
            let guest = try registry.store.get(id)
            guard guest.state == .handoverUnknown else {
                throw PanelError.invalidState("guest \(guest.name)'s hand-over is not unknown (it is \(guest.state.rawValue))")
            }
            let decided: Side
            var peerGuestId: String?
            if let side {
                decided = side
                logger.warning("a person settled an unknown hand-over", metadata: ["guest": "\(guest.name)", "runsOn": "\(side.rawValue)"])
            } else {
                guard let record = try record(of: id) else {
                    throw PanelError(
                        .conflict, code: "handover_unknown",
                        message:
                            "there is no way left to ask \(guest.peer ?? "the destination"); say where the guest runs: {\"runsOn\": \"here\"} or {\"runsOn\": \"peer\"}"
                    )
                }
                switch ask(record) {
                case .runsThere(let there): decided = .peer; peerGuestId = there
                case .neverStarted: decided = .here
                case .undecided:
                    throw PanelError(
                        .conflict, code: "handover_unknown",
                        message:
                            "\(record.peerURL) does not say whether it runs guest \(guest.name); check it, then confirm: {\"runsOn\": \"here\"} or {\"runsOn\": \"peer\"}"
                    )
                }
            }
            return try settle(guest, on: decided, peerGuestId: peerGuestId)
        }
    }

    /// Applies a settled hand-over; the caller holds the guest's lifecycle lock.
    private func settle(_ guest: GuestRecord, on side: Side, peerGuestId: String?) throws -> GuestRecord {
        let machine = try? registry.runtime(guest.id)
        switch side {
        case .peer:
            let settled = try finish(guestId: guest.id, state: .migrated, peerGuestId: peerGuestId)
            if let machine {
                registry.register(nil, for: guest.id)
                machine.stop()
            }
            // A state saved while it was unknown is not this host's to resume any more.
            if settled.managedSave != nil {
                try registry.store.update(guest.id) { $0.managedSave = nil }
                unlink(registry.managedSavePath(guest.id))
            }
            return settled
        case .here:
            // The parked machine (if the panel kept running) waits to be resumed; after a restart
            // there is none, and the guest starts afresh when asked.
            return try finish(guestId: guest.id, state: machine == nil ? .stopped : .paused)
        }
    }

    /// Asks about every unknown hand-over now and every `retryInterval` until none is left or
    /// the panel stops.
    func startResolving() {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else {
            wake.signal()
            return
        }
        let thread = Thread { [self] in
            while !stopped.load(ordering: .acquiring) {
                let unknown = (try? database.read { db in try HandOverRecord.fetchAll(db) }) ?? []
                if unknown.isEmpty {
                    running.store(false, ordering: .releasing)
                    // One begun meanwhile may have found this thread still running: look once more.
                    let late = (try? database.read { db in try HandOverRecord.fetchCount(db) }) ?? 0
                    guard late > 0, !running.exchange(true, ordering: .acquiringAndReleasing) else { return }
                    continue
                }
                for record in unknown where !stopped.load(ordering: .acquiring) {
                    if (try? resolve(record.guestId, runsOn: nil)) != nil {
                        logger.info("an unknown hand-over was settled by asking the destination", metadata: ["guest": "\(record.guestId)"])
                    }
                }
                _ = wake.wait(timeout: .now() + Self.retryInterval)
            }
            running.store(false, ordering: .releasing)
        }
        thread.name = "emupanel-handover"
        thread.start()
    }

    func stop() {
        stopped.store(true, ordering: .releasing)
        wake.signal()
    }
}
