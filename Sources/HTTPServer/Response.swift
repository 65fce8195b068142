import Foundation

/// What a handler answers. Bodies are bytes, an open file (sent with sendfile),
/// a response that another thread completes later (long poll), or an event stream (SSE).
public struct Response: Sendable {
    public enum Body: Sendable {
        case bytes([UInt8])
        case file(FileBody)
        case deferred(DeferredResponse)
        case stream(EventStream)
    }

    public var status: HTTPStatus
    public var headers: HTTPHeaders
    public var body: Body

    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders(), body: Body = .bytes([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    /// A JSON response. Encoding failure is a programming error and answers 500.
    public static func json<T: Encodable>(_ value: T, status: HTTPStatus = .ok) -> Response {
        guard let data = try? encoder.encode(value) else {
            return Response(
                status: .internalServerError, headers: HTTPHeaders([("Content-Type", "application/json")]),
                body: .bytes(Array(#"{"error":{"code":"internal_error","message":"response encoding failed"}}"#.utf8)))
        }
        return json(bytes: Array(data), status: status)
    }

    /// Shared by every JSON response: copying it is a retain, building it an allocation.
    private static let jsonHeaders = HTTPHeaders([("Content-Type", "application/json")])

    /// Prebuilt JSON bytes, for hot paths that answer the same thing often.
    public static func json(bytes: [UInt8], status: HTTPStatus = .ok) -> Response {
        Response(status: status, headers: jsonHeaders, body: .bytes(bytes))
    }

    public static func text(_ text: String, status: HTTPStatus = .ok, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: HTTPHeaders([("Content-Type", contentType)]), body: .bytes(Array(text.utf8)))
    }

    public static func empty(_ status: HTTPStatus = .noContent) -> Response {
        Response(status: status)
    }
}

/// An open file to send; the server closes the descriptor when the response is done.
public struct FileBody: Sendable {
    public var descriptor: Int32
    public var size: UInt64
    public init(descriptor: Int32, size: UInt64) {
        self.descriptor = descriptor
        self.size = size
    }
}
