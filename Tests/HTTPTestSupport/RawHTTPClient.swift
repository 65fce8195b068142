import Foundation

/// A deliberately small HTTP/1.1 client over a raw socket, so tests control every byte
/// (traversal paths, malformed requests, oversized headers) and can hold connections open.
public final class RawHTTPConnection {
    public struct Reply: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]

        public func header(_ name: String) -> String? {
            headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
        }
        public var text: String { String(decoding: body, as: UTF8.self) }
        public func json() throws -> [String: Any] {
            guard let object = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
                throw TestHTTPError.notJSON(text)
            }
            return object
        }
        /// The `error.code` of the API's error shape.
        public var errorCode: String? {
            ((try? json())?["error"] as? [String: Any])?["code"] as? String
        }
    }

    private let fd: Int32
    private var buffer: [UInt8] = []

    /// `source` binds the client end to another loopback address (127.0.0.2 …), so one test can
    /// speak as several clients, as per-address limits see them.
    public init(port: UInt16, host: String = "127.0.0.1", source: String? = nil, timeout: Double = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestHTTPError.io("socket") }
        let fd = fd
        /// `call` (bind or connect) on an IPv4 address; false when it failed.
        func on(_ host: String, _ port: UInt16, _ call: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Bool {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            inet_pton(AF_INET, host, &address.sin_addr)
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            } == 0
        }
        // No close here: once every stored property is set, Swift runs deinit even when init
        // throws, and a second close would shut whatever descriptor took the number meanwhile
        // (a server's accepted connection in the same process: libmicrohttpd aborts on it).
        if let source, !on(source, 0, bind) {
            throw TestHTTPError.io("bind to \(source)")
        }
        guard on(host, port, connect) else {
            throw TestHTTPError.io("connect to \(host):\(port)")
        }
        setTimeout(timeout)
    }

    deinit { close(fd) }

    public func setTimeout(_ seconds: Double) {
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    public func send(raw bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw TestHTTPError.io("send") }
            offset += written
        }
    }

    public func send(_ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8]? = nil) throws {
        // `Host: localhost` unless the test names its own (an empty value sends none).
        let host = headers.first { $0.key.lowercased() == "host" }?.value ?? "localhost"
        var head = "\(method) \(path) HTTP/1.1\r\n" + (host.isEmpty ? "" : "Host: \(host)\r\n")
        for (name, value) in headers where name.lowercased() != "host" { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        try send(raw: Array(head.utf8) + (body ?? []))
    }

    public func request(_ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8]? = nil) throws -> Reply {
        try send(method, path, headers: headers, body: body)
        return try readReply(headOnly: method == "HEAD")
    }

    /// Reads one response: Content-Length, chunked, or until the peer closes.
    public func readReply(headOnly: Bool = false) throws -> Reply {
        let head = try readUntil(Array("\r\n\r\n".utf8))
        let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        guard let statusLine = lines.first, let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
            throw TestHTTPError.malformed(String(decoding: head, as: UTF8.self))
        }
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let reply = Reply(status: status, headers: headers, body: [])
        if headOnly || status == 204 || status == 304 { return reply }
        var body: [UInt8] = []
        if let length = reply.header("Content-Length").flatMap(Int.init) {
            body = try readExactly(length)
        } else if reply.header("Transfer-Encoding")?.lowercased() == "chunked" {
            while true {
                let sizeLine = String(decoding: try readUntil(Array("\r\n".utf8)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                guard let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16) else { throw TestHTTPError.malformed(sizeLine) }
                if size == 0 { _ = try readUntil(Array("\r\n".utf8)); break }
                body += try readExactly(size)
                _ = try readExactly(2)
            }
        } else {
            body = buffer
            buffer = []
            while let chunk = try readSome() { body += chunk }
        }
        return Reply(status: status, headers: headers, body: body)
    }

    /// Reads a line of a streaming body (SSE); nil when the peer closed.
    public func readLine() throws -> String? {
        do {
            return String(decoding: try readUntil(Array("\n".utf8)), as: UTF8.self).trimmingCharacters(in: .newlines)
        } catch TestHTTPError.closed {
            return nil
        }
    }

    private func readSome() throws -> [UInt8]? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        // A reset is a close too: a server that closes with request bytes unread sends one.
        if count == 0 || (count < 0 && errno == ECONNRESET) { return nil }
        guard count > 0 else { throw TestHTTPError.timeout }
        return Array(chunk[..<count])
    }

    private func readUntil(_ marker: [UInt8]) throws -> [UInt8] {
        while true {
            if let range = find(marker) {
                let result = Array(buffer[..<range])
                buffer.removeFirst(range + marker.count)
                return result
            }
            guard let chunk = try readSome() else { throw TestHTTPError.closed }
            buffer += chunk
        }
    }

    private func readExactly(_ count: Int) throws -> [UInt8] {
        while buffer.count < count {
            guard let chunk = try readSome() else { throw TestHTTPError.closed }
            buffer += chunk
        }
        let result = Array(buffer[..<count])
        buffer.removeFirst(count)
        return result
    }

    private func find(_ marker: [UInt8]) -> Int? {
        guard buffer.count >= marker.count else { return nil }
        for start in 0...(buffer.count - marker.count) where buffer[start] == marker[0] {
            if Array(buffer[start..<start + marker.count]) == marker { return start }
        }
        return nil
    }

    /// True when the peer has closed the connection (reads return end of file).
    public func peerClosed(within seconds: Double) -> Bool {
        setTimeout(seconds)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            switch Result(catching: { try readSome() }) {
            case .success(nil): return true
            case .success: continue
            case .failure: return false
            }
        }
        return false
    }
}

public enum TestHTTPError: Error {
    case io(String), timeout, closed, malformed(String), notJSON(String)
}

/// One request on a fresh connection.
public func httpRequest(
    port: UInt16, _ method: String, _ path: String, headers: [String: String] = [:],
    body: [UInt8]? = nil, source: String? = nil
) throws -> RawHTTPConnection.Reply {
    try RawHTTPConnection(port: port, source: source).request(method, path, headers: headers, body: body)
}

/// Sends `raw` — a request as the test spells it, often only its head — on a fresh connection and
/// reads one reply; the connection is returned for what the test checks next.
public func rawExchange(port: UInt16, _ raw: String) throws -> (reply: RawHTTPConnection.Reply, connection: RawHTTPConnection) {
    let connection = try RawHTTPConnection(port: port)
    try connection.send(raw: Array(raw.utf8))
    return (try connection.readReply(), connection)
}

public func jsonBody(_ object: [String: Any]) -> [UInt8] {
    Array((try? JSONSerialization.data(withJSONObject: object)) ?? Data())
}
