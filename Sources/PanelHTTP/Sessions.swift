import Foundation
import HTTPServer
import PanelCore
import Synchronization

/// Browser sessions: a token traded for an HttpOnly, SameSite=Strict cookie plus a CSRF
/// token that every mutating request made with the cookie must echo in `X-CSRF-Token`.
public final class SessionStore: Sendable {
    public static let cookieName = "emupanel_session"
    static let maxSessions = 1024

    struct Session: Sendable {
        var csrfToken: String
        var expires: Date
    }

    private let sessions = Mutex<[String: Session]>([:])
    let lifetime: TimeInterval

    public init(lifetimeHours: Double) {
        lifetime = lifetimeHours * 3600
    }

    /// A new session: its id (the cookie) and CSRF token.
    func create() -> (id: String, csrfToken: String) {
        let id = Secrets.randomHex(bytes: 32), csrf = Secrets.randomHex(bytes: 24)
        sessions.withLock { sessions in
            let now = Date()
            sessions = sessions.filter { $0.value.expires > now }
            if sessions.count >= Self.maxSessions, let oldest = sessions.min(by: { $0.value.expires < $1.value.expires }) {
                sessions.removeValue(forKey: oldest.key)
            }
            sessions[id] = Session(csrfToken: csrf, expires: now.addingTimeInterval(lifetime))
        }
        return (id, csrf)
    }

    /// The live session for a cookie value, its expiry slid forward.
    func lookup(_ id: String) -> Session? {
        sessions.withLock { sessions in
            guard var session = sessions[id] else { return nil }
            guard session.expires > Date() else {
                sessions.removeValue(forKey: id)
                return nil
            }
            session.expires = Date().addingTimeInterval(lifetime)
            sessions[id] = session
            return session
        }
    }

    func remove(_ id: String) {
        _ = sessions.withLock { $0.removeValue(forKey: id) }
    }

    func cookie(for id: String) -> String {
        "\(Self.cookieName)=\(id); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(Int(lifetime))"
    }

    static let clearingCookie = "\(cookieName)=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
}

/// Every API route but the public ones needs the admin token (`Authorization: Bearer`) or a
/// session cookie; cookie requests that change something must carry the session's CSRF token.
struct AuthMiddleware: AuthenticatingMiddleware {
    let token: String
    let sessions: SessionStore

    static let principalKey = "auth"

    func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response {
        var request = request
        if let authorization = request.headers["Authorization"] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer",
                  Secrets.constantTimeEquals(String(parts[1]).trimmingCharacters(in: .whitespaces), token) else {
                throw HTTPError(.unauthorized, code: "invalid_token", message: "the bearer token is not valid",
                                headers: [("WWW-Authenticate", "Bearer")])
            }
            request.attributes[Self.principalKey] = "token"
            return try next(request)
        }
        if let id = request.cookies[SessionStore.cookieName], let session = sessions.lookup(id) {
            if ![.GET, .HEAD, .OPTIONS].contains(request.method) {
                guard let csrf = request.headers["X-CSRF-Token"] else {
                    throw HTTPError(.forbidden, code: "csrf_required",
                                    message: "requests made with the session cookie must send X-CSRF-Token")
                }
                guard Secrets.constantTimeEquals(csrf, session.csrfToken) else {
                    throw HTTPError(.forbidden, code: "csrf_mismatch", message: "X-CSRF-Token does not match the session")
                }
            }
            request.attributes[Self.principalKey] = "session"
            request.attributes["csrfToken"] = session.csrfToken
            return try next(request)
        }
        throw Self.noCredentials
    }

    /// Without a token or a session cookie nothing can pass: refused before the body is read.
    func refusalBeforeBody(_ head: Request) -> HTTPError? {
        head.headers["Authorization"] == nil && head.cookies[SessionStore.cookieName] == nil ? Self.noCredentials : nil
    }

    private static let noCredentials = HTTPError(.unauthorized, code: "unauthorized",
                                                 message: "send Authorization: Bearer <token> or log in",
                                                 headers: [("WWW-Authenticate", "Bearer")])
}

/// Login and logout for the browser (SPEC §6).
struct SessionController: Sendable {
    let token: String
    let sessions: SessionStore

    struct Login: Decodable { var token: String }
    struct SessionInfo: APIExample {
        var authenticated = true
        var via: String
        var csrfToken: String?
        static var example: SessionInfo { SessionInfo(via: "session", csrfToken: "0123456789abcdef") }
    }

    func addRoutes(to api: RouteGroup) {
        api.post("/session", summary: "Trade the admin token for a session cookie and a CSRF token", public: true,
                 doc: .init(body: Login.self, answer: SessionInfo.self, status: .created)) { request in
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
        api.get("/session", summary: "Who is asking: token or session, and the session's CSRF token", doc: .init(answer: SessionInfo.self)) { request in
            var response = Response.json(SessionInfo(via: request.attributes[AuthMiddleware.principalKey] ?? "token",
                                                     csrfToken: request.attributes["csrfToken"]))
            response.headers.add("Cache-Control", "no-store")
            return response
        }
        api.delete("/session", summary: "Log out: forget the session and clear the cookie", doc: .init(answer: nil, status: .noContent)) { request in
            if let id = request.cookies[SessionStore.cookieName] { sessions.remove(id) }
            var response = Response.empty()
            response.headers.add("Set-Cookie", SessionStore.clearingCookie)
            return response
        }
    }
}
