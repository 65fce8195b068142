import Foundation
import HTTPServer
import Logging
import PanelCore
import Synchronization

/// Browser sessions: a token traded for an HttpOnly, SameSite=Strict cookie plus a CSRF
/// token that every mutating request made with the cookie must echo in `X-CSRF-Token`.
///
/// The cookie is named after the port the panel serves on (`emupanel_session_8080`): cookies
/// ignore ports, so two panels on one machine would otherwise overwrite each other's session.
/// Sessions live in memory for lookups and in SQLite (`SessionRecords`, by the id's hash) so a
/// restart signs nobody out; the sliding expiry is written back at most every few minutes.
public final class SessionStore: Sendable {
    public static let cookiePrefix = "emupanel_session_"
    static let maxSessions = 1024

    struct Session: Sendable {
        var csrfToken: String
        var expires: Date
        var createdAt: Date
        /// The expiry the database holds.
        var storedExpires: Date
    }

    private let sessions = Mutex<[String: Session]>([:])
    private let records: SessionRecords
    private let name = Mutex<String>(SessionStore.cookiePrefix + "0")
    private let logger: Logger
    let lifetime: TimeInterval

    init(records: SessionRecords, lifetimeHours: Double, logger: Logger) {
        self.records = records
        self.logger = logger
        lifetime = lifetimeHours * 3600
        let now = Date()
        do {
            let live = try records.live(at: now)
            sessions.withLock { sessions in
                for record in live {
                    sessions[record.idHash] = Session(
                        csrfToken: record.csrfToken, expires: record.expires,
                        createdAt: record.createdAt, storedExpires: record.expires)
                }
            }
        } catch {
            logger.error("cannot read the stored sessions; everyone logs in again", metadata: ["error": "\(error)"])
        }
    }

    /// The cookie's name; fixed once the port is known (`PanelApp.start`).
    var cookieName: String { name.withLock { $0 } }

    func servePort(_ port: UInt16) {
        name.withLock { $0 = Self.cookiePrefix + String(port) }
    }

    /// A new session: its id (the cookie) and CSRF token.
    func create() -> (id: String, csrfToken: String) {
        let id = Secrets.randomHex(bytes: 32)
        let csrf = Secrets.randomHex(bytes: 24)
        let key = SessionRecords.hash(id)
        let now = Date()
        let expires = now.addingTimeInterval(lifetime)
        let dropped: [String] = sessions.withLock { sessions in
            var dropped = sessions.filter { $0.value.expires <= now }.map(\.key)
            for key in dropped { sessions.removeValue(forKey: key) }
            if sessions.count >= Self.maxSessions, let oldest = sessions.min(by: { $0.value.expires < $1.value.expires }) {
                sessions.removeValue(forKey: oldest.key)
                dropped.append(oldest.key)
            }
            sessions[key] = Session(csrfToken: csrf, expires: expires, createdAt: now, storedExpires: expires)
            return dropped
        }
        store("record a session") {
            for key in dropped { try records.delete(idHash: key) }
            try records.insert(SessionRecord(idHash: key, csrfToken: csrf, expires: expires, createdAt: now))
        }
        return (id, csrf)
    }

    /// The live session for a cookie value, its expiry slid forward.
    func lookup(_ id: String) -> Session? {
        let key = SessionRecords.hash(id)
        let now = Date()
        let (session, persist): (Session?, Date?) = sessions.withLock { sessions in
            guard var session = sessions[key] else { return (nil, nil) }
            guard session.expires > now else {
                sessions.removeValue(forKey: key)
                return (nil, nil)
            }
            session.expires = now.addingTimeInterval(lifetime)
            // Written back when it moved far enough that a restart would cut the session noticeably short.
            var persist: Date?
            if session.expires.timeIntervalSince(session.storedExpires) > min(lifetime / 10, 300) {
                session.storedExpires = session.expires
                persist = session.expires
            }
            sessions[key] = session
            return (session, persist)
        }
        if let persist { store("extend a session") { try records.setExpiry(idHash: key, persist) } }
        return session
    }

    func remove(_ id: String) {
        let key = SessionRecords.hash(id)
        _ = sessions.withLock { $0.removeValue(forKey: key) }
        store("forget a session") { try records.delete(idHash: key) }
    }

    /// The database follows memory; when it cannot (a full disk), sessions still work until the
    /// next restart, and the log says so.
    private func store(_ what: String, _ body: () throws -> Void) {
        do {
            try body()
        } catch {
            logger.error("cannot \(what) in the database; it lasts until the next restart", metadata: ["error": "\(error)"])
        }
    }

    func cookie(for id: String) -> String {
        "\(cookieName)=\(id); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(Int(lifetime))"
    }

    var clearingCookie: String { "\(cookieName)=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0" }
}

/// Every API route but the public ones needs the admin token (`Authorization: Bearer`) or a
/// session cookie; cookie requests that change something must carry the session's CSRF token.
/// The whole check is made from the head, before a body is read (issue 11 item 13); failures
/// are logged and limited per client (item 16).
struct AuthMiddleware: AuthenticatingMiddleware {
    let token: String
    let sessions: SessionStore
    let limiter: AuthFailureLimiter

    static let principalKey = "auth"

    func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response {
        var request = request
        try authenticate(&request)
        return try next(request)
    }

    func refusalBeforeBody(_ head: Request) -> HTTPError? {
        var head = head
        do {
            try authenticate(&head)
            return nil
        } catch let error as HTTPError {
            return error
        } catch {
            return HTTPError(.internalServerError, code: "internal_error", message: String(describing: error))
        }
    }

    private func authenticate(_ request: inout Request) throws {
        let authorization = request.headers["Authorization"]
        let cookie = request.cookies[sessions.cookieName]
        guard authorization != nil || cookie != nil else { throw Self.noCredentials }
        if let limited = limiter.refusal(for: request.client, path: request.path) { throw limited }
        if let authorization {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer",
                Secrets.constantTimeEquals(String(parts[1]).trimmingCharacters(in: .whitespaces), token)
            else {
                limiter.failed(request.client, path: request.path, reason: "the bearer token is not valid")
                throw HTTPError(
                    .unauthorized, code: "invalid_token", message: "the bearer token is not valid",
                    headers: [("WWW-Authenticate", "Bearer")])
            }
            request.attributes[Self.principalKey] = "token"
            return
        }
        guard let cookie, let session = sessions.lookup(cookie) else {
            limiter.failed(request.client, path: request.path, reason: "unknown or expired session")
            throw HTTPError(
                .unauthorized, code: "unauthorized", message: "the session is unknown or has expired; log in again",
                headers: [("WWW-Authenticate", "Bearer")])
        }
        if ![.GET, .HEAD, .OPTIONS].contains(request.method) {
            guard let csrf = request.headers["X-CSRF-Token"] else {
                throw HTTPError(
                    .forbidden, code: "csrf_required",
                    message: "requests made with the session cookie must send X-CSRF-Token")
            }
            guard Secrets.constantTimeEquals(csrf, session.csrfToken) else {
                throw HTTPError(.forbidden, code: "csrf_mismatch", message: "X-CSRF-Token does not match the session")
            }
        }
        request.attributes[Self.principalKey] = "session"
        request.attributes["csrfToken"] = session.csrfToken
    }

    private static let noCredentials = HTTPError(
        .unauthorized, code: "unauthorized",
        message: "send Authorization: Bearer <token> or log in",
        headers: [("WWW-Authenticate", "Bearer")])
}

/// Login and logout for the browser (SPEC §6).
struct SessionController: Sendable {
    let token: String
    let sessions: SessionStore
    let limiter: AuthFailureLimiter

    /// Logins are public: their bodies are read without credentials, so they are kept small.
    static let maxLoginBytes = 4 << 10

    struct Login: Decodable { var token: String }
    struct SessionInfo: APIExample {
        var authenticated = true
        var via: String
        var csrfToken: String?
        static var example: SessionInfo { SessionInfo(via: "session", csrfToken: "0123456789abcdef") }
    }

    func addRoutes(to api: RouteGroup) {
        api.post(
            "/session", summary: "Trade the admin token for a session cookie and a CSRF token", public: true,
            maxBodyBytes: Self.maxLoginBytes, doc: .init(body: Login.self, answer: SessionInfo.self, status: .created)
        ) { request in
            if let limited = limiter.refusal(for: request.client, path: request.path) { throw limited }
            let login = try request.decode(Login.self)
            guard Secrets.constantTimeEquals(login.token, token) else {
                limiter.failed(request.client, path: request.path, reason: "wrong token at login")
                throw HTTPError(.unauthorized, code: "invalid_token", message: "the token is not valid")
            }
            let session = sessions.create()
            var response = Response.json(SessionInfo(via: "session", csrfToken: session.csrfToken), status: .created)
            response.headers.add("Set-Cookie", sessions.cookie(for: session.id))
            return response
        }
        api.get("/session", summary: "Who is asking: token or session, and the session's CSRF token", doc: .init(answer: SessionInfo.self)) {
            request in
            Response.json(
                SessionInfo(
                    via: request.attributes[AuthMiddleware.principalKey] ?? "token",
                    csrfToken: request.attributes["csrfToken"]))
        }
        api.delete("/session", summary: "Log out: forget the session and clear the cookie", doc: .init(answer: nil, status: .noContent)) { request in
            if let id = request.cookies[sessions.cookieName] { sessions.remove(id) }
            var response = Response.empty()
            response.headers.add("Set-Cookie", sessions.clearingCookie)
            return response
        }
    }
}
