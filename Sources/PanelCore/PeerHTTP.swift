import Foundation
import Migration

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Calls to a peer at an `http://` address: one HTTP/1.1 request on a connection of its own,
/// written at once and answered on the calling thread within one deadline. URLSession (kept for
/// `https://`) passes every call across its own queues and libcurl's, which put 1–5 ms on each
/// migration's offer on a busy host; here it is a connect, one write and a few reads. A redirect
/// is answered as it came (status and Location), never followed: the token must not go elsewhere.
enum PeerHTTP {
    static let maximumHeadBytes = 64 << 10
    /// A peer's largest answer is a QEMU state-description dump (~1 MiB).
    static let maximumBodyBytes = 256 << 20

    /// Nil when no whole answer came within `timeout` seconds.
    static func send(_ request: URLRequest, timeout: Double) -> PeerSession.Reply? {
        let deadline = Date().addingTimeInterval(timeout)
        do {
            guard let url = request.url, url.scheme == "http", let host = url.host, !host.isEmpty,
                let parts = URLComponents(url: url, resolvingAgainstBaseURL: false)
            else {
                return PeerSession.Reply(error: "\(request.url?.absoluteString ?? "?") is no http:// address")
            }
            let port = url.port ?? 80
            guard let portNumber = UInt16(exactly: port) else { return PeerSession.Reply(error: "port \(port) is out of range") }
            let socket = try TCPSocket.connect(host: host, port: portNumber, timeout: timeout)
            let target = (parts.percentEncodedPath.isEmpty ? "/" : parts.percentEncodedPath) + (parts.percentEncodedQuery.map { "?" + $0 } ?? "")
            let authority = (host.contains(":") ? "[\(host)]" : host) + (url.port.map { ":\($0)" } ?? "")
            var head = "\(request.httpMethod ?? "GET") \(target) HTTP/1.1\r\nHost: \(authority)\r\n"
            // URLRequest keeps no header value with a line break; tokens are checked before (PeerClient.isTokenText).
            for (name, value) in request.allHTTPHeaderFields ?? [:] { head += "\(name): \(value)\r\n" }
            let body = request.httpBody ?? Data()
            head += "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
            try (Data(head.utf8) + body).withUnsafeBytes { try socket.write($0) }
            var reader = AnswerReader(socket: socket, deadline: deadline)
            return try reader.answer()
        } catch is AnswerReader.TimedOut {
            return nil
        } catch {
            return PeerSession.Reply(error: "\(error)")
        }
    }

    /// Reads one HTTP/1.1 answer: its head, then a body framed by Content-Length, by chunks, or
    /// by the end of the connection.
    struct AnswerReader {
        struct TimedOut: Error {}
        struct Malformed: Error, CustomStringConvertible { var description: String }

        let socket: TCPSocket
        let deadline: Date
        private var buffer: [UInt8] = []
        private var start = 0

        init(socket: TCPSocket, deadline: Date) {
            self.socket = socket
            self.deadline = deadline
        }

        mutating func answer() throws -> PeerSession.Reply {
            var (status, headers) = try head()
            // 1xx answers (100 Continue) come before the real one.
            while (100..<200).contains(status) { (status, headers) = try head() }
            var reply = PeerSession.Reply(status: status, location: headers["location"])
            if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
                while true {
                    let sizeLine = try line(limit: 1024)
                    let digits = sizeLine.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
                    guard let size = Int(digits, radix: 16), size >= 0 else { throw Malformed(description: "a chunk size '\(sizeLine)'") }
                    if size == 0 {
                        while try !line(limit: Self.limit).isEmpty {}  // trailers
                        break
                    }
                    try checkBody(reply.data.count + size)
                    reply.data.append(contentsOf: try bytes(size))
                    guard try line(limit: 2).isEmpty else { throw Malformed(description: "a chunk without its CRLF") }
                }
            } else if let text = headers["content-length"] {
                guard let length = Int(text), length >= 0 else { throw Malformed(description: "Content-Length '\(text)'") }
                try checkBody(length)
                reply.data = Data(try bytes(length))
            } else if status != 204 && status != 304 {
                while try fill() { try checkBody(buffer.count - start) }
                reply.data = Data(buffer[start...])
            }
            return reply
        }

        private static let limit = PeerHTTP.maximumHeadBytes

        private func checkBody(_ count: Int) throws {
            guard count <= PeerHTTP.maximumBodyBytes else {
                throw Malformed(description: "an answer over \(PeerHTTP.maximumBodyBytes >> 20) MiB")
            }
        }

        /// The status and the headers (names lowercased) of the next answer.
        private mutating func head() throws -> (Int, [String: String]) {
            let statusLine = try line(limit: Self.limit)
            let fields = statusLine.split(separator: " ", maxSplits: 2)
            guard fields.count >= 2, fields[0].hasPrefix("HTTP/1."), let status = Int(fields[1]) else {
                throw Malformed(description: "a status line '\(statusLine.prefix(80))'")
            }
            var headers: [String: String] = [:]
            var size = statusLine.utf8.count
            while true {
                let header = try line(limit: Self.limit)
                size += header.utf8.count
                guard size <= Self.limit else { throw Malformed(description: "a head over \(Self.limit >> 10) KiB") }
                if header.isEmpty { return (status, headers) }
                guard let colon = header.firstIndex(of: ":") else { throw Malformed(description: "a header '\(header.prefix(80))'") }
                headers[header[..<colon].lowercased()] = header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }

        /// The next line without its CRLF (or LF).
        private mutating func line(limit: Int) throws -> String {
            // Counted from `start`: a fill may move what is unread to the buffer's front.
            var scanned = 0
            while true {
                if let newline = buffer[(start + scanned)...].firstIndex(of: UInt8(ascii: "\n")) {
                    var end = newline
                    if end > start, buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                    let text = String(decoding: buffer[start..<end], as: UTF8.self)
                    start = newline + 1
                    return text
                }
                scanned = buffer.count - start
                guard scanned <= limit else { throw Malformed(description: "a line over \(limit) bytes") }
                guard try fill() else { throw Malformed(description: "the peer closed the connection mid-answer") }
            }
        }

        private mutating func bytes(_ count: Int) throws -> ArraySlice<UInt8> {
            while buffer.count - start < count {
                guard try fill() else { throw Malformed(description: "the peer closed the connection mid-answer") }
            }
            defer { start += count }
            return buffer[start..<(start + count)]
        }

        /// Reads what has come; false at the end of the connection.
        private mutating func fill() throws -> Bool {
            if start > 0, start == buffer.count {
                buffer.removeAll(keepingCapacity: true)
                start = 0
            }
            guard socket.waitForInput(until: deadline) else { throw TimedOut() }
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            let count = try chunk.withUnsafeMutableBytes { try socket.read(into: $0) }
            buffer += chunk[..<count]
            return count > 0
        }
    }
}
