import Foundation
import HTTPServer

/// What this host is: `/health` for probes (no auth) and `/host` for the overview page.
struct HostController: Sendable {
    let configuration: PanelConfiguration
    let listenAddress: @Sendable () -> String
    let startedAt: Date
    let counts: @Sendable () -> HostCounts

    struct Health: Encodable { var status = "ok"; var release = Release.current }

    struct HostInfo: Encodable {
        var release: String
        var hostname: String
        var listen: String
        var startedAt: String
        var uptimeSeconds: Int
        var peers: [PeerInfo]
        var counts: HostCounts
    }

    struct PeerInfo: Encodable { var name: String; var url: String }

    func addRoutes(to api: RouteGroup) {
        let health = Array((try? JSONEncoder().encode(Health())) ?? Data())
        api.get("/health", summary: "Liveness probe; needs no token", public: true) { _ in
            .json(bytes: health)
        }
        api.get("/host", summary: "This host: release, peers and counts") { _ in
            .json(HostInfo(
                release: Release.current,
                hostname: ProcessInfo.processInfo.hostName,
                listen: listenAddress(),
                startedAt: startedAt.formatted(.iso8601),
                uptimeSeconds: Int(Date().timeIntervalSince(startedAt)),
                peers: configuration.peers.map { PeerInfo(name: $0.name, url: $0.url) },
                counts: counts()))
        }
    }
}

/// Totals shown on the overview; each module that owns a collection contributes its count.
public struct HostCounts: Sendable, Encodable, Equatable {
    public var machineTypes = 0
    public var guests = 0
    public var runningGuests = 0
    public var snapshots = 0
    public var activeTasks = 0
    public init() {}
}

/// Login and logout for the browser (SPEC §6).
struct SessionController: Sendable {
    let token: String
    let sessions: SessionStore

    struct Login: Decodable { var token: String }
    struct SessionInfo: Encodable { var authenticated = true; var via: String; var csrfToken: String? }

    func addRoutes(to api: RouteGroup) {
        api.post("/session", summary: "Trade the admin token for a session cookie and a CSRF token", public: true) { request in
            let login = try request.decode(Login.self)
            guard Secrets.constantTimeEquals(login.token, token) else {
                throw HTTPError(.unauthorized, code: "invalid_token", message: "the token is not valid")
            }
            let session = sessions.create()
            var response = Response.json(SessionInfo(via: "session", csrfToken: session.csrfToken), status: .created)
            response.headers.add("Set-Cookie", sessions.cookie(for: session.id))
            response.headers.add("Cache-Control", "no-store")
            return response
        }
        api.get("/session", summary: "Who is asking: token or session, and the session's CSRF token") { request in
            var response = Response.json(SessionInfo(via: request.attributes[AuthMiddleware.principalKey] ?? "token",
                                                     csrfToken: request.attributes["csrfToken"]))
            response.headers.add("Cache-Control", "no-store")
            return response
        }
        api.delete("/session", summary: "Log out: forget the session and clear the cookie") { request in
            if let id = request.cookies[SessionStore.cookieName] { sessions.remove(id) }
            var response = Response.empty()
            response.headers.add("Set-Cookie", SessionStore.clearingCookie)
            return response
        }
    }
}

/// Every change as numbered events: long poll and Server-Sent Events.
struct EventsController: Sendable {
    let events: EventBus

    func addRoutes(to api: RouteGroup) {
        api.get("/events", summary: "Events after `since`; waits up to `wait` seconds for the next one (long poll)") { request in
            let since = try request.queryInt("since", default: 0, range: 0...Int.max)
            let wait = try request.queryInt("wait", default: 0, range: 0...60)
            return events.poll(since: UInt64(since), wait: Double(wait))
        }
        api.get("/events/stream", summary: "Events as Server-Sent Events; honours Last-Event-ID") { request in
            let since: Int
            if let last = request.headers["Last-Event-ID"] {
                guard let value = Int(last), value >= 0 else {
                    throw HTTPError(.badRequest, code: "invalid_header", message: "Last-Event-ID must be an event number")
                }
                since = value
            } else {
                since = try request.queryInt("since", default: Int(events.nextSeq) - 1, range: 0...Int.max)
            }
            return events.stream(since: UInt64(since))
        }
    }
}
