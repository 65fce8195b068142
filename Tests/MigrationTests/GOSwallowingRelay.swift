// A fake destination URL in front of a real destination panel: it asks the destination for a
// ticket, hands the source its own port instead, and relays the stream both ways — until the
// source's GO, which it swallows before hanging up on both sides. So the destination never gets
// GO, and the source never gets STARTED: the one window a migration cannot close by itself.
import Foundation
import HTTPTestSupport
import Migration
import Synchronization

final class GOSwallowingRelay: Sendable {
    private let http: TCPListener
    private let destinationPort: UInt16
    private let sawOK = Atomic<Bool>(false)
    private let swallowed = Atomic<Bool>(false)

    var url: String { "http://127.0.0.1:\(http.port)" }
    /// The source sent GO after the destination's OK, and it went nowhere.
    var swallowedGO: Bool { swallowed.load(ordering: .acquiring) }

    init(destinationPort: UInt16) throws {
        http = try TCPListener(host: "127.0.0.1")
        self.destinationPort = destinationPort
        let thread = Thread { [self] in try? serveOneMigration() }
        thread.start()
    }

    deinit { http.close() }

    private func serveOneMigration() throws {
        let client = try http.accept(timeout: 60)
        client.setTimeouts(30)
        let (headers, body) = try Self.readRequest(from: client)
        let reply = try httpRequest(port: destinationPort, "POST", "/api/v1/migrations/incoming",
                                    headers: ["Authorization": headers["authorization"] ?? "", "Content-Type": "application/json"], body: body)
        var ticket = try reply.json()
        guard let destinationStreamPort = ticket["port"] as? Int else { throw TestHTTPError.malformed("no port in \(reply.text)") }
        let streams = try TCPListener(host: "127.0.0.1")
        ticket["port"] = Int(streams.port)
        let answer = jsonBody(ticket)
        try client.write(line: "HTTP/1.1 \(reply.status) Answered\r\nContent-Type: application/json\r\nContent-Length: \(answer.count)\r\nConnection: close\r")
        try client.write(line: "\r")
        try answer.withUnsafeBytes { try client.write($0) }
        client.shutdown()
        let source = try streams.accept(timeout: 30)
        let destination = try TCPSocket.connect(host: "127.0.0.1", port: UInt16(destinationStreamPort), timeout: 30)
        let back = Thread { [self] in relayVerdicts(from: destination, to: source) }
        back.start()
        relayStream(from: source, to: destination)
    }

    /// Source → destination: the stream as it comes; the first bytes after the destination's OK are GO.
    private func relayStream(from source: TCPSocket, to destination: TCPSocket) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = (try? buffer.withUnsafeMutableBytes { try source.read(into: $0) }) ?? 0
            if sawOK.load(ordering: .acquiring) {
                swallowed.store(String(decoding: buffer[..<count], as: UTF8.self).hasPrefix("GO"), ordering: .releasing)
                break
            }
            guard count > 0, (try? buffer[..<count].withUnsafeBytes({ try destination.write($0) })) != nil else { break }
        }
        source.shutdown()
        destination.shutdown()
    }

    /// Destination → source: its verdict lines, noting OK before passing it on.
    private func relayVerdicts(from destination: TCPSocket, to source: TCPSocket) {
        while let line = try? destination.readLine() {
            if line == "OK" { sawOK.store(true, ordering: .releasing) }
            guard (try? source.write(line: line)) != nil else { break }
        }
    }

    /// A request head (names lowercased) and its body.
    private static func readRequest(from client: TCPSocket) throws -> ([String: String], [UInt8]) {
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
        return (headers, body)
    }
}
