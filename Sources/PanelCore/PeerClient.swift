import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Calls another emupanel's API (pre-flight, incoming migration) with its token. Blocking, with a
/// timeout: it runs on task threads, never on the HTTP server's.
struct PeerClient: Sendable {
    let baseURL: URL
    let token: String

    /// `{"peer": name}` or `{"url": …, "token": …}` from a request body.
    static func resolve(_ target: MigrationTarget, peers: [PanelSettings.Peer]) throws -> PeerClient {
        if let name = target.peer {
            guard let peer = peers.first(where: { $0.name == name }), let url = URL(string: peer.url) else {
                throw PanelError(
                    .invalid, code: "unknown_peer",
                    message: "no peer named '\(name)'; configured: \(peers.map(\.name).joined(separator: ", "))")
            }
            return PeerClient(baseURL: url, token: peer.token)
        }
        guard let text = target.url, let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw PanelError(.invalid, code: "invalid_target", message: "target needs a peer name, or an http(s) url and a token")
        }
        guard let token = target.token, !token.isEmpty else {
            throw PanelError(.invalid, code: "invalid_target", message: "target url needs the destination's token")
        }
        guard isTokenText(token) else {
            throw PanelError(.invalid, code: "invalid_target", message: "the destination's token must be printable ASCII without spaces")
        }
        return PeerClient(baseURL: url, token: token)
    }

    /// What a token may hold: it goes into an `Authorization` header, where a line break would
    /// end the header and start another.
    static func isTokenText(_ token: String) -> Bool {
        token.unicodeScalars.allSatisfy { (0x21...0x7e).contains($0.value) }
    }

    var host: String { baseURL.host ?? "127.0.0.1" }

    func post(_ path: String, _ body: JSON, timeout: Double = 15) throws -> JSON {
        try call("POST", path, body: body, timeout: timeout)
    }

    func get(_ path: String, timeout: Double = 15) throws -> JSON {
        try call("GET", path, body: nil, timeout: timeout)
    }

    /// The answer's bytes as sent (a QEMU dump is compared and checked as text, never parsed here).
    func getBytes(_ path: String, timeout: Double = 15) throws -> Data {
        try exchange("GET", path, body: nil, timeout: timeout)
    }

    private func call(_ method: String, _ path: String, body: JSON?, timeout: Double) throws -> JSON {
        let data = try exchange(method, path, body: body, timeout: timeout)
        return (try? JSONDecoder().decode(JSON.self, from: data)) ?? .null
    }

    private func exchange(_ method: String, _ path: String, body: JSON?, timeout: Double) throws -> Data {
        // By text, not appendingPathComponent: a path may carry a query (`?backend=qemu`).
        let base = baseURL.absoluteString.hasSuffix("/") ? String(baseURL.absoluteString.dropLast()) : baseURL.absoluteString
        guard let url = URL(string: base + "/api/v1" + path) else {
            throw PanelError(.invalid, code: "invalid_target", message: "\(base) with \(path) is no URL")
        }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONEncoder().encode(body)
        }
        let answer = baseURL.scheme == "http" ? PeerHTTP.send(request, timeout: timeout) : PeerSession.shared.send(request, timeout: timeout + 1)
        guard let reply = answer else {
            throw PanelError(.peer, code: "peer_unreachable", message: "\(baseURL.absoluteString) did not answer within \(Int(timeout)) s")
        }
        if let error = reply.error {
            throw PanelError(.peer, code: "peer_unreachable", message: "cannot reach \(baseURL.absoluteString): \(error)")
        }
        if let status = reply.status, (300..<400).contains(status) {
            let location = reply.location.map { " to \($0)" } ?? ""
            throw PeerError(
                status: status,
                message: "answered with a redirect (HTTP \(status))\(location), which is not followed: "
                    + "the peer's token would go with it; configure the peer's final URL")
        }
        guard let status = reply.status, (200..<300).contains(status) else {
            let json = (try? JSONDecoder().decode(JSON.self, from: reply.data)) ?? .null
            let message = json["error"]?["message"].flatMap { if case .string(let s) = $0 { s } else { nil } } ?? "HTTP \(reply.status ?? 0)"
            let code = json["error"]?["code"].flatMap { if case .string(let s) = $0 { s } else { nil } }
            throw PeerError(status: reply.status ?? 0, message: message, code: code)
        }
        return reply.data
    }
}

/// The destination refused; its message is the reason shown to the user.
struct PeerError: Error, CustomStringConvertible {
    var status: Int
    var message: String
    /// The destination's error code, when it answered with the error shape.
    var code: String? = nil
    var description: String { "destination: \(message)" }
}

/// The one URLSession, for calls to `https://` peers (PeerHTTP makes those to `http://` ones). Its
/// delegate refuses every redirect (issue 11 item 14): a peer's bearer token must never reach
/// another host, and Foundation would resend the `Authorization` header to wherever a 3xx points.
/// Tasks are delegate-driven because swift-corelibs-foundation follows redirects of
/// completion-handler tasks without asking.
// @unchecked Sendable: `pendingTasks` is only touched under `lock`; `session` is set once in init
final class PeerSession: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    static let shared = PeerSession()

    struct Reply: Sendable {
        var data = Data()
        var status: Int?
        var error: String?
        /// Where a refused redirect pointed.
        var location: String?
    }

    private struct Pending {
        var reply = Reply()
        let done = DispatchSemaphore(value: 0)
    }

    /// A pthread lock rather than `Mutex`: the sender and URLSession's delegate thread meet here
    /// on every call, and ThreadSanitizer cannot see `Mutex`'s contended hand-off.
    private let lock = NSLock()
    private var pendingTasks: [Int: Pending] = [:]
    private var session: URLSession!

    private func pending<T>(_ body: (inout [Int: Pending]) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&pendingTasks)
    }

    private override init() {
        super.init()
        session = URLSession(configuration: .ephemeral, delegate: self, delegateQueue: nil)
    }

    /// Sends and waits up to `timeout`; nil when no answer came in time (the task is cancelled).
    func send(_ request: URLRequest, timeout: Double) -> Reply? {
        let task = session.dataTask(with: request)
        let id = task.taskIdentifier
        let done = pending { pending in
            let entry = Pending()
            pending[id] = entry
            return entry.done
        }
        task.resume()
        let answered = done.wait(timeout: .now() + timeout) == .success
        let reply = pending { $0.removeValue(forKey: id)?.reply }
        if !answered { task.cancel() }
        return answered ? reply : nil
    }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void
    ) {
        pending { $0[task.taskIdentifier]?.reply.location = request.url?.absoluteString }
        completionHandler(nil)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        pending { $0[dataTask.taskIdentifier]?.reply.data.append(data) }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        pending { pending in
            guard var entry = pending[task.taskIdentifier] else { return }
            entry.reply.status = (task.response as? HTTPURLResponse)?.statusCode
            entry.reply.error = error.map { $0.localizedDescription }
            pending[task.taskIdentifier] = entry
            entry.done.signal()
        }
    }
}

/// Where a migration goes: a configured peer by name, or a URL and token.
public struct MigrationTarget: Codable, Sendable {
    var peer: String?
    var url: String?
    var token: String?
}
