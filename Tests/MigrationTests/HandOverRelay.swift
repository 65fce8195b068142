// A fake destination URL in front of a real destination panel, for the hand-over's edges. HTTP
// requests are passed on to the destination (the one that opens a migration gets the relay's own
// stream port in its ticket); the stream and the verdict lines are relayed both ways, and at the
// hand-over the relay does what the test asks: swallow the source's GO and hang up (so neither
// side hears from the other), hold the destination's OK back for good (a destination that went
// silent with the guest parked), hold it a while saying WAIT meanwhile (a destination still
// loading), or stop for a hook at OK or GO before passing it on. Before the stream it can hold
// the destination's READY back a while (WAIT meanwhile) or answer ERR in its place.
import Foundation
import HTTPTestSupport
import Migration
import Synchronization

final class HandOverRelay: Sendable {
    enum Behaviour: Sendable {
        /// GO goes nowhere; both connections are closed.
        case swallowGO
        /// The destination's OK never reaches the source; the relay then sits silent.
        case holdOK
        /// The destination's OK reaches the source `seconds` late, with a WAIT every quarter second meanwhile.
        case delayOK(seconds: Double)
        /// `hook` runs when the destination's OK arrives, before it is passed on.
        case atOK(@Sendable () -> Void)
        /// `hook` runs when the source's GO arrives, before it is passed on.
        case atGO(@Sendable () -> Void)
        /// The destination's READY reaches the source `seconds` late, with a WAIT every quarter second meanwhile.
        case delayReady(seconds: Double)
        /// The source hears `ERR reason` instead of READY (a destination whose machine failed to
        /// start), and both connections close.
        case refuseAtReady(String)
    }

    private let http: TCPListener
    private let destinationPort: UInt16
    private let behaviour: Behaviour
    private let sawOK = Atomic<Bool>(false)
    private let swallowed = Atomic<Bool>(false)
    private let closed = Atomic<Bool>(false)

    var url: String { "http://127.0.0.1:\(http.port)" }
    /// The source sent GO after the destination's OK, and it went nowhere.
    var swallowedGO: Bool { swallowed.load(ordering: .acquiring) }

    init(destinationPort: UInt16, behaviour: Behaviour = .swallowGO) throws {
        http = try TCPListener(host: "127.0.0.1")
        self.destinationPort = destinationPort
        self.behaviour = behaviour
        let thread = Thread { [self] in serveHTTP() }
        thread.start()
    }

    deinit {
        closed.store(true, ordering: .releasing)
        http.close()
    }

    /// One request per connection, as PeerClient's are answered (`Connection: close`).
    private func serveHTTP() {
        while !closed.load(ordering: .acquiring), let client = try? http.accept(timeout: 120) {
            client.setTimeouts(30)
            Thread { [self] in try? answer(client) }.start()
        }
    }

    private func answer(_ client: TCPSocket) throws {
        defer { client.shutdown() }
        let (method, path, headers, body) = try Self.readRequest(from: client)
        var forwarded = ["Authorization": headers["authorization"] ?? ""]
        if !body.isEmpty { forwarded["Content-Type"] = "application/json" }
        let reply = try httpRequest(port: destinationPort, method, path, headers: forwarded, body: body.isEmpty ? nil : body)
        var answer = reply.body
        if method == "POST", path == "/api/v1/migrations/incoming", reply.status == 201 {
            var ticket = try reply.json()
            guard let destinationStreamPort = ticket["port"] as? Int else { throw TestHTTPError.malformed("no port in \(reply.text)") }
            let streams = try TCPListener(host: "127.0.0.1")
            ticket["port"] = Int(streams.port)
            answer = jsonBody(ticket)
            Thread { [self] in try? relayOneStream(listener: streams, destinationStreamPort: UInt16(destinationStreamPort)) }.start()
        }
        try client.write(
            line: "HTTP/1.1 \(reply.status) Relayed\r\nContent-Type: application/json\r\nContent-Length: \(answer.count)\r\nConnection: close\r")
        try client.write(line: "\r")
        try answer.withUnsafeBytes { try client.write($0) }
    }

    private func relayOneStream(listener: TCPListener, destinationStreamPort: UInt16) throws {
        defer { listener.close() }
        let source = try listener.accept(timeout: 30)
        let destination = try TCPSocket.connect(host: "127.0.0.1", port: destinationStreamPort, timeout: 30)
        let back = Thread { [self] in relayVerdicts(from: destination, to: source) }
        back.start()
        relayStream(from: source, to: destination)
    }

    /// Source → destination: the stream as it comes; the first bytes after the destination's OK are GO.
    private func relayStream(from source: TCPSocket, to destination: TCPSocket) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = (try? buffer.withUnsafeMutableBytes { try source.read(into: $0) }) ?? 0
            if count > 0, sawOK.load(ordering: .acquiring), String(decoding: buffer[..<count], as: UTF8.self).hasPrefix("GO") {
                switch behaviour {
                case .swallowGO:
                    swallowed.store(true, ordering: .releasing)
                    source.shutdown()
                    destination.shutdown()
                    return
                case .atGO(let hook):
                    hook()
                default:
                    break
                }
            }
            guard count > 0, (try? buffer[..<count].withUnsafeBytes({ try destination.write($0) })) != nil else { break }
        }
        source.shutdown()
        destination.shutdown()
    }

    /// Destination → source: its lines (READY, WAIT, the verdict), noting OK before passing it on.
    private func relayVerdicts(from destination: TCPSocket, to source: TCPSocket) {
        while let line = try? destination.readLine() {
            if line == "READY" {
                switch behaviour {
                case .delayReady(let seconds):
                    for _ in 0..<Int(seconds * 4) {
                        Thread.sleep(forTimeInterval: 0.25)
                        guard (try? source.write(line: "WAIT")) != nil else { return }
                    }
                case .refuseAtReady(let reason):
                    try? source.write(line: "ERR \(reason)")
                    source.shutdown()
                    destination.shutdown()
                    return
                default: break
                }
            }
            if line == "OK" {
                sawOK.store(true, ordering: .releasing)
                switch behaviour {
                case .holdOK: return
                case .delayOK(let seconds):
                    for _ in 0..<Int(seconds * 4) {
                        Thread.sleep(forTimeInterval: 0.25)
                        guard (try? source.write(line: "WAIT")) != nil else { return }
                    }
                case .atOK(let hook): hook()
                default: break
                }
            }
            guard (try? source.write(line: line)) != nil else { break }
        }
    }

    /// A request's method, path, head (names lowercased) and body.
    private static func readRequest(from client: TCPSocket) throws -> (String, String, [String: String], [UInt8]) {
        guard let requestLine = try client.readLine() else { throw TestHTTPError.malformed("no request line") }
        let parts = requestLine.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ")
        guard parts.count >= 2 else { throw TestHTTPError.malformed(requestLine) }
        var headers: [String: String] = [:]
        while let line = try client.readLine(), !line.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if headers["expect"]?.lowercased() == "100-continue" {
            try client.write(line: "HTTP/1.1 100 Continue\r")
            try client.write(line: "\r")
        }
        var body: [UInt8] = []
        let length = Int(headers["content-length"] ?? "0") ?? 0
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while body.count < length {
            let count = try chunk.withUnsafeMutableBytes { try client.read(into: $0) }
            guard count > 0 else { break }
            body += chunk[..<count]
        }
        return (String(parts[0]), String(parts[1]), headers, body)
    }
}
