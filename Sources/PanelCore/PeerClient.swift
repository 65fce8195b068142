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
                throw PanelError(.invalid, code: "unknown_peer",
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
        return PeerClient(baseURL: url, token: token)
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
        let done = DispatchSemaphore(value: 0)
        let box = ReplyBox()
        let task = URLSession.shared.dataTask(with: request) { data, response, error in
            box.set(data: data, status: (response as? HTTPURLResponse)?.statusCode, error: error)
            done.signal()
        }
        task.resume()
        guard done.wait(timeout: .now() + timeout + 1) == .success else {
            task.cancel()
            throw PanelError(.peer, code: "peer_unreachable", message: "\(baseURL.absoluteString) did not answer within \(Int(timeout)) s")
        }
        let (data, status, error) = box.get()
        if let error {
            throw PanelError(.peer, code: "peer_unreachable", message: "cannot reach \(baseURL.absoluteString): \(error.localizedDescription)")
        }
        guard let status, (200..<300).contains(status) else {
            let json = data.flatMap { try? JSONDecoder().decode(JSON.self, from: $0) } ?? .null
            let message = json["error"]?["message"].flatMap { if case .string(let s) = $0 { s } else { nil } } ?? "HTTP \(status ?? 0)"
            let code = json["error"]?["code"].flatMap { if case .string(let s) = $0 { s } else { nil } }
            throw PeerError(status: status ?? 0, message: message, code: code)
        }
        return data ?? Data()
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

private final class ReplyBox: @unchecked Sendable { // written once by URLSession's callback before the semaphore signals
    private var data: Data?
    private var status: Int?
    private var error: (any Error)?
    func set(data: Data?, status: Int?, error: (any Error)?) { self.data = data; self.status = status; self.error = error }
    func get() -> (Data?, Int?, (any Error)?) { (data, status, error) }
}

/// Where a migration goes: a configured peer by name, or a URL and token.
public struct MigrationTarget: Codable, Sendable {
    var peer: String?
    var url: String?
    var token: String?
}
