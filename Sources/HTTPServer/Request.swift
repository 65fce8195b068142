import Foundation

/// HTTP methods the router dispatches on.
public enum HTTPMethod: String, Sendable, CaseIterable, Hashable {
    case GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS
}

/// Header names compared case-insensitively, values as sent.
public struct HTTPHeaders: Sendable, Sequence {
    private var storage: [(name: String, value: String)] = []

    public init() {}
    public init(_ pairs: [(String, String)]) { storage = pairs.map { (name: $0.0, value: $0.1) } }

    public subscript(name: String) -> String? {
        storage.first { Self.sameName($0.name, name) }?.value
    }

    public mutating func add(_ name: String, _ value: String) { storage.append((name, value)) }

    public mutating func set(_ name: String, _ value: String) {
        storage.removeAll { Self.sameName($0.name, name) }
        storage.append((name, value))
    }

    /// Field names are ASCII tokens (RFC 9110 §5.1) compared case-insensitively; anything else
    /// falls back to Foundation's comparison.
    private static func sameName(_ a: String, _ b: String) -> Bool {
        var left = a.utf8.makeIterator()
        var right = b.utf8.makeIterator()
        while true {
            switch (left.next(), right.next()) {
            case (nil, nil): return true
            case let (x?, y?):
                if x == y { continue }
                if x >= 0x80 || y >= 0x80 { return a.caseInsensitiveCompare(b) == .orderedSame }
                if x | 0x20 != y | 0x20 || !(0x61...0x7A).contains(x | 0x20) { return false }
            default:
                return a.utf8.contains { $0 >= 0x80 } || b.utf8.contains { $0 >= 0x80 }
                    ? a.caseInsensitiveCompare(b) == .orderedSame : false
            }
        }
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { storage.makeIterator() }
}

/// One fully received request: the body is complete (and within the limit) before a handler sees it.
public struct Request: Sendable {
    public var method: HTTPMethod
    /// The decoded path, without the query string.
    public var path: String
    public var query: [String: String]
    public var headers: HTTPHeaders
    public var cookies: [String: String]
    public var body: [UInt8]
    /// Values captured by `{name}` segments of the matched route.
    public var parameters: [String: String] = [:]
    /// Values middleware hands to handlers (for example the authenticated principal).
    public var attributes: [String: String] = [:]
    /// Where the request came from (the peer of the TCP connection).
    public var client: ClientAddress = .unknown

    public init(
        method: HTTPMethod, path: String, query: [String: String] = [:], headers: HTTPHeaders = HTTPHeaders(),
        cookies: [String: String] = [:], body: [UInt8] = []
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.cookies = cookies
        self.body = body
    }

    /// A path parameter the route declared; a missing one is a routing bug, reported as 400.
    public func parameter(_ name: String) throws -> String {
        guard let value = parameters[name] else {
            throw HTTPError(.badRequest, code: "missing_parameter", message: "missing path parameter '\(name)'")
        }
        return value
    }

    /// Decodes the JSON body; malformed JSON or a wrong shape is a 400 naming the problem.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        guard !body.isEmpty else {
            throw HTTPError(.badRequest, code: "invalid_json", message: "request body must be a JSON object")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch let DecodingError.keyNotFound(key, _) {
            throw HTTPError(.badRequest, code: "invalid_json", message: "missing field '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw HTTPError(.badRequest, code: "invalid_json", message: "field '\(path)' has the wrong type")
        } catch let DecodingError.valueNotFound(_, context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw HTTPError(.badRequest, code: "invalid_json", message: "field '\(path)' must not be null")
        } catch {
            throw HTTPError(.badRequest, code: "invalid_json", message: "request body is not valid JSON")
        }
    }

    /// An integer query parameter within bounds, or the default when absent.
    public func queryInt(_ name: String, default defaultValue: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = query[name] else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw HTTPError(
                .badRequest, code: "invalid_query",
                message: "query parameter '\(name)' must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }
}
