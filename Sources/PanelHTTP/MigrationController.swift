import Foundation
import HTTPServer
import PanelCore

/// Live migration routes: the source's pre-flight and migrate, the destination's incoming side.
/// Pre-flight calls the other host and may wait for its timeout: it runs on a pool of its own, so
/// a silent host can hold up neither the server's threads nor the guests' lifecycle pool.
struct MigrationController: Sendable {
    let outgoing: OutgoingMigrations
    let incoming: IncomingMigrations
    let handOvers: HandOvers
    let workers: WorkerPool
    let peerCalls: WorkerPool
    /// Calls to other hosts under way at once, at most: each may wait for the peer's timeout.
    static let maximumPeerCalls = 8

    /// Where a guest whose hand-over is unknown runs, as a person confirms it; nothing to ask the peer.
    struct Resolution: Decodable { var runsOn: HandOvers.Side? }

    struct MigrationRequest: Decodable {
        var target: MigrationTarget
        var downtimeLimitMs: Double?
        var maxBandwidth: Double?
    }

    func addRoutes(to api: RouteGroup) {
        api.post(
            "/guests/{id}/migrate/preflight", summary: "Go / no-go for migrating to a target, with reasons; nothing moves",
            doc: .init(body: MigrationRequest.self, answer: JSON.self)
        ) { request in
            let (body, id) = (try request.decode(MigrationRequest.self), try request.parameter("id"))
            return peerCalls.respond { respondMapped { .json(try outgoing.preflight(id, target: body.target)) } }
        }
        api.post(
            "/guests/{id}/migrate", summary: "Live-migrate to {target: {peer} or {url, token}, downtimeLimitMs, maxBandwidth}; 202 with the task",
            doc: .init(body: MigrationRequest.self, answer: TaskEnvelope.self, status: .accepted)
        ) { request in
            let (body, id) = (try request.decode(MigrationRequest.self), try request.parameter("id"))
            guard let downtime = (body.downtimeLimitMs ?? 300).wholeNumber(in: OutgoingMigrations.downtimeLimits) else {
                throw HTTPError(.unprocessableEntity, code: "invalid_downtime", message: "downtimeLimitMs must be 1...60000")
            }
            guard let bandwidth = (body.maxBandwidth ?? 0).wholeNumber(in: OutgoingMigrations.bandwidthLimits) else {
                throw HTTPError(.unprocessableEntity, code: "invalid_bandwidth", message: "maxBandwidth must be 0 (unlimited) ... 10^15 bytes/s")
            }
            return workers.respond {
                respondMapped {
                    .json(
                        TaskEnvelope(task: try outgoing.migrate(id, target: body.target, downtimeLimitMs: downtime, maxBandwidth: bandwidth)),
                        status: .accepted)
                }
            }
        }
        api.post(
            "/guests/{id}/resolve", summary: "Settle an unknown hand-over: {runsOn: here|peer} as confirmed, or {} to ask the peer",
            doc: .init(body: Resolution.self, answer: GuestRecord.self)
        ) { request in
            let id = try request.parameter("id")
            let runsOn = request.body.isEmpty ? nil : try request.decode(Resolution.self).runsOn
            return peerCalls.respond { respondMapped { .json(try handOvers.resolve(id, runsOn: runsOn)) } }
        }
        api.get(
            "/migrations/incoming/{migrationId}",
            summary: "Destination: what became of a migration (its source asks when the hand-over's answer was lost)",
            doc: .init(answer: HandOverStatus.self)
        ) { request in
            .json(try incoming.status(try request.parameter("migrationId")))
        }
        api.post(
            "/migrations/incoming/preflight",
            summary: "Destination: would this host take the offered guest? (machine type, tier, static check both ways)",
            doc: .init(body: IncomingMigrations.IncomingOffer.self, answer: IncomingMigrations.Verdict.self)
        ) { request in
            .json(try incoming.verdict(try request.decode(IncomingMigrations.IncomingOffer.self)))
        }
        api.post(
            "/migrations/incoming", summary: "Destination: accept a migration; answers a one-time ticket and the port to stream to",
            doc: .init(body: IncomingMigrations.IncomingOffer.self, answer: IncomingMigrations.Ticket.self, status: .created)
        ) { request in
            .json(try incoming.accept(try request.decode(IncomingMigrations.IncomingOffer.self)), status: .created)
        }
    }
}
