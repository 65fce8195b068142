import Foundation
import HTTPServer
import Synchronization

/// Live migration routes: the source's pre-flight and migrate, the destination's incoming side.
struct MigrationController: Sendable {
    let guests: GuestManager
    let listenHost: String

    struct Request: Decodable {
        var target: MigrationTarget
        var downtimeLimitMs: Double?
        var maxBandwidth: Double?
    }

    func addRoutes(to api: RouteGroup) {
        api.post("/guests/{id}/migrate/preflight", summary: "Go / no-go for migrating to a target, with reasons; nothing moves") { request in
            let body = try request.decode(Request.self)
            let id = try request.parameter("id")
            return Self.deferred { try guests.preflight(id, target: body.target) }
        }
        api.post("/guests/{id}/migrate", summary: "Live-migrate to {target: {peer} or {url, token}, downtimeLimitMs, maxBandwidth}; 202 with the task") { request in
            let body = try request.decode(Request.self)
            guard let downtime = (body.downtimeLimitMs ?? 300).wholeNumber(in: GuestManager.downtimeLimits) else {
                throw HTTPError(.unprocessableEntity, code: "invalid_downtime", message: "downtimeLimitMs must be 1...60000")
            }
            guard let bandwidth = (body.maxBandwidth ?? 0).wholeNumber(in: GuestManager.bandwidthLimits) else {
                throw HTTPError(.unprocessableEntity, code: "invalid_bandwidth", message: "maxBandwidth must be 0 (unlimited) ... 10^15 bytes/s")
            }
            let task = try guests.migrate(try request.parameter("id"), target: body.target,
                                          downtimeLimitMs: downtime, maxBandwidth: bandwidth)
            return .json(TaskEnvelope(task: task), status: .accepted)
        }
        api.post("/migrations/incoming/preflight", summary: "Destination: would this host take the offered guest? (machine type, tier, static check both ways)") { request in
            .json(guests.incomingVerdict(try request.decode(GuestManager.IncomingOffer.self)))
        }
        api.post("/migrations/incoming", summary: "Destination: accept a migration; answers a one-time ticket and the port to stream to") { request in
            .json(try guests.acceptIncoming(try request.decode(GuestManager.IncomingOffer.self), listenHost: listenHost), status: .created)
        }
    }

    /// Calls to other hosts under way, and how many may be: each blocks a thread for up to the
    /// peer timeout.
    private static let peerCalls = Atomic<Int>(0)
    static let maximumPeerCalls = 8

    /// Work that calls another host runs off the HTTP threads, on a thread of its own — on
    /// Dispatch's shared pool a few calls to a silent host would starve every long poll and
    /// URLSession's own callbacks; the connection waits suspended. Past `maximumPeerCalls`: 503.
    static func deferred(_ work: @escaping @Sendable () throws -> JSON) -> Response {
        guard peerCalls.add(1, ordering: .relaxed).newValue <= maximumPeerCalls else {
            peerCalls.subtract(1, ordering: .relaxed)
            return HTTPError(.serviceUnavailable, code: "busy", message: "too many calls to other hosts at once; retry in a moment",
                             headers: [("Retry-After", "1")]).response
        }
        let deferred = DeferredResponse()
        let thread = Thread {
            defer { peerCalls.subtract(1, ordering: .relaxed) }
            do {
                deferred.complete(.json(try work()))
            } catch let error as HTTPError {
                deferred.complete(error.response)
            } catch {
                deferred.complete(HTTPError(.badGateway, code: "peer_error", message: String(describing: error)).response)
            }
        }
        thread.name = "emupanel-peer"
        thread.start()
        return Response(body: .deferred(deferred))
    }
}
