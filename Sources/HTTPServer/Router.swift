import Foundation

/// A request handler: plain synchronous code that returns a response or throws an `HTTPError`.
/// Work that must wait answers `.deferred` or `.stream` instead of blocking.
public typealias Handler = @Sendable (Request) throws -> Response

/// Code that wraps handlers: authentication, logging, headers (Hummingbird's `handle(request, next)`).
public protocol Middleware: Sendable {
    func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response
}

/// Middleware that checks credentials; routes registered `public: true` skip it.
public protocol AuthenticatingMiddleware: Middleware {
    /// Asked before a request's body is read, with `head` carrying everything but the body:
    /// an error here answers at once, so no body is buffered for a request that cannot pass.
    /// It should make the whole credential check (a wrong token or unknown session is as good
    /// a reason as none); `handle` runs again once the body is in.
    func refusalBeforeBody(_ head: Request) -> HTTPError?
}

extension AuthenticatingMiddleware {
    public func refusalBeforeBody(_ head: Request) -> HTTPError? { nil }
}

/// What a registered route is, for the dispatcher and for the OpenAPI document.
public struct RouteInfo: Sendable, Hashable {
    public var method: HTTPMethod
    /// The pattern as registered, `{name}` marking a parameter.
    public var path: String
    public var summary: String
    public var tag: String
    /// False for the few routes that answer without a token (health, login).
    public var requiresAuth: Bool
    /// A body limit below the server's (`maxBodyBytes`), for routes that take small bodies,
    /// above all public ones: larger bodies are refused from the head.
    public var maxBodyBytes: Int?
    /// What it takes and answers; not part of its identity.
    public var documentation = RouteDocumentation()

    public static func == (a: RouteInfo, b: RouteInfo) -> Bool { a.method == b.method && a.path == b.path }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(method)
        hasher.combine(path)
    }
}

/// A route's body, answers and query parameters, with their shapes taken from the Codable types
/// the handler decodes and encodes: the OpenAPI document and the tests' response checks read it.
public struct RouteDocumentation: Sendable {
    /// A shape with the name of the type it came from (a component of the document).
    public struct Named: Sendable {
        public var name: String
        public var schema: JSONSchema
    }

    public struct Answer: Sendable {
        public var status: HTTPStatus
        /// nil: no body (204).
        public var body: Named?
    }

    public struct QueryParameter: Sendable {
        public var name: String
        public var schema: JSONSchema
        public var description: String
        public init(_ name: String, _ schema: JSONSchema, _ description: String) {
            self.name = name
            self.schema = schema
            self.description = description
        }
    }

    public var body: Named?
    public var answers: [Answer] = []
    public var query: [QueryParameter] = []
    /// Answers with a stream (Server-Sent Events) rather than JSON.
    public var eventStream = false

    public init() {}

    /// A route that decodes `body` (if any) and answers `answer` with `status` (nil: no body).
    public init(
        body: (any Decodable.Type)? = nil, answer: (any APIExample.Type)?, status: HTTPStatus = .ok,
        query: [QueryParameter] = []
    ) {
        self.body = body.map { Self.named($0, JSONSchema.decodable($0)) }
        answers = [Answer(status: status, body: answer.map { Self.named($0, JSONSchema.encodable($0)) })]
        self.query = query
    }

    /// Also answers `status` with `answer`'s shape (a route with two successes, 200 and 202).
    public func also(_ answer: (any APIExample.Type)?, status: HTTPStatus) -> RouteDocumentation {
        var copy = self
        copy.answers.append(Answer(status: status, body: answer.map { Self.named($0, JSONSchema.encodable($0)) }))
        return copy
    }

    public static func eventStream(query: [QueryParameter] = []) -> RouteDocumentation {
        var documentation = RouteDocumentation()
        documentation.eventStream = true
        documentation.query = query
        return documentation
    }

    /// `Items<GuestRecord>` → `ItemsOfGuestRecord`: the type's name as a document component can carry it.
    static func named(_ type: Any.Type, _ schema: JSONSchema) -> Named {
        let name = String(describing: type)
            .replacingOccurrences(of: "<", with: "Of").replacingOccurrences(of: ">", with: "")
            .replacingOccurrences(of: ", ", with: "And").replacingOccurrences(of: ".", with: "")
        return Named(name: name, schema: schema)
    }
}

/// Collects routes and middleware; `build()` freezes them into an immutable `Router`.
public final class RouterBuilder {
    fileprivate struct Entry {
        var info: RouteInfo
        var middleware: [any Middleware]
        var handler: Handler
    }

    fileprivate var entries: [Entry] = []
    private var fallback: Handler?

    public init() {}

    /// A set of routes under one path prefix sharing middleware.
    public func group(_ prefix: String, tag: String = "", middleware: [any Middleware] = []) -> RouteGroup {
        RouteGroup(builder: self, prefix: prefix, tag: tag, middleware: middleware)
    }

    /// Answers requests that match no route (static files); API paths never fall through.
    public func setFallback(_ handler: @escaping Handler) { fallback = handler }

    fileprivate func add(_ entry: Entry) {
        precondition(
            !entries.contains { $0.info.method == entry.info.method && $0.info.path == entry.info.path },
            "route registered twice: \(entry.info.method) \(entry.info.path)")
        entries.append(entry)
    }

    public func build(apiPrefix: String = "/api/") -> Router {
        Router(
            entries: entries.map { Router.Route(info: $0.info, middleware: $0.middleware, handler: $0.handler) },
            fallback: fallback, apiPrefix: apiPrefix)
    }
}

/// Routes registered under a prefix with the group's middleware.
public struct RouteGroup {
    fileprivate let builder: RouterBuilder
    public let prefix: String
    public let tag: String
    fileprivate let middleware: [any Middleware]

    public func group(_ path: String, tag: String? = nil, middleware more: [any Middleware] = []) -> RouteGroup {
        RouteGroup(builder: builder, prefix: prefix + path, tag: tag ?? self.tag, middleware: middleware + more)
    }

    public func on(
        _ method: HTTPMethod, _ path: String, summary: String, public isPublic: Bool = false,
        maxBodyBytes: Int? = nil, doc: RouteDocumentation = RouteDocumentation(), _ handler: @escaping Handler
    ) {
        let info = RouteInfo(
            method: method, path: prefix + path, summary: summary, tag: tag, requiresAuth: !isPublic,
            maxBodyBytes: maxBodyBytes, documentation: doc)
        let chain = isPublic ? middleware.filter { !($0 is any AuthenticatingMiddleware) } : middleware
        builder.add(.init(info: info, middleware: chain, handler: handler))
    }

    public func get(
        _ path: String, summary: String, public isPublic: Bool = false, doc: RouteDocumentation = RouteDocumentation(),
        _ handler: @escaping Handler
    ) {
        on(.GET, path, summary: summary, public: isPublic, doc: doc, handler)
    }
    public func post(
        _ path: String, summary: String, public isPublic: Bool = false, maxBodyBytes: Int? = nil,
        doc: RouteDocumentation = RouteDocumentation(), _ handler: @escaping Handler
    ) {
        on(.POST, path, summary: summary, public: isPublic, maxBodyBytes: maxBodyBytes, doc: doc, handler)
    }
    public func patch(_ path: String, summary: String, doc: RouteDocumentation = RouteDocumentation(), _ handler: @escaping Handler) {
        on(.PATCH, path, summary: summary, doc: doc, handler)
    }
    public func put(_ path: String, summary: String, doc: RouteDocumentation = RouteDocumentation(), _ handler: @escaping Handler) {
        on(.PUT, path, summary: summary, doc: doc, handler)
    }
    public func delete(
        _ path: String, summary: String, public isPublic: Bool = false, doc: RouteDocumentation = RouteDocumentation(),
        _ handler: @escaping Handler
    ) {
        on(.DELETE, path, summary: summary, public: isPublic, doc: doc, handler)
    }
}

/// An immutable segment trie from paths to handlers; safe to share across the server's threads.
public struct Router: Sendable {
    struct Route: Sendable {
        var info: RouteInfo
        var middleware: [any Middleware]
        var handler: Handler
        /// The chain's authenticating middleware, found once rather than cast per request.
        var authenticators: [any AuthenticatingMiddleware]

        init(info: RouteInfo, middleware: [any Middleware], handler: @escaping Handler) {
            self.info = info
            self.middleware = middleware
            self.handler = handler
            authenticators = middleware.compactMap { $0 as? any AuthenticatingMiddleware }
        }
    }

    /// The segment trie, frozen into flat tables of plain values indexed by node number (root 0).
    /// Both of libmicrohttpd's threads walk it on every request: plain values need no reference
    /// counting, so the walk touches no shared counters.
    private struct Trie: Sendable {
        struct Node {
            /// `edges[firstEdge ..< firstEdge + edgeCount]`, scanned in order: fan-out is small, and
            /// comparing a few bytes beats hashing a `Substring` (and matches bytes, not canonical equivalence).
            var firstEdge: Int
            var edgeCount: Int
            /// The `{name}` child, or -1; its name is `parameterNames[node]`.
            var parameterChild: Int
            /// Whether any method is routed here (else the path is only a prefix of routes).
            var isRoute: Bool
        }
        struct Edge {
            /// `names[nameStart ..< nameStart + nameCount]`
            var nameStart: Int
            var nameCount: Int
            var child: Int
        }

        var nodes: [Node] = []
        var edges: [Edge] = []
        var names: [UInt8] = []
        var parameterNames: [String] = []
        /// `routes[node * methodCount + method.slot]`
        var routes: [Route?] = []
        static let methodCount = HTTPMethod.allCases.count

        init(_ root: Draft) {
            var queue = [root]
            // Breadth first, so a node's children get consecutive numbers: edges stay contiguous.
            var next = 0
            var number: [ObjectIdentifier: Int] = [ObjectIdentifier(root): 0]
            func numbered(_ draft: Draft) -> Int {
                if let known = number[ObjectIdentifier(draft)] { return known }
                number[ObjectIdentifier(draft)] = queue.count
                queue.append(draft)
                return queue.count - 1
            }
            while next < queue.count {
                let draft = queue[next]
                next += 1
                let firstEdge = edges.count
                for (segment, child) in draft.literals.sorted(by: { $0.key < $1.key }) {
                    let bytes = Array(segment.utf8)
                    edges.append(Edge(nameStart: names.count, nameCount: bytes.count, child: numbered(child)))
                    names += bytes
                }
                nodes.append(
                    Node(
                        firstEdge: firstEdge, edgeCount: edges.count - firstEdge,
                        parameterChild: draft.parameter.map { numbered($0.node) } ?? -1,
                        isRoute: !draft.methods.isEmpty))
                parameterNames.append(draft.parameter?.name ?? "")
                for method in HTTPMethod.allCases { routes.append(draft.methods[method]) }
            }
        }

        func child(of node: Int, _ segment: UnsafeBufferPointer<UInt8>) -> Int? {
            let entry = nodes[node]
            for index in entry.firstEdge..<entry.firstEdge + entry.edgeCount {
                let edge = edges[index]
                guard edge.nameCount == segment.count else { continue }
                let same = names.withUnsafeBufferPointer {
                    memcmp($0.baseAddress! + edge.nameStart, segment.baseAddress!, segment.count) == 0
                }
                if same { return edge.child }
            }
            return nil
        }

        func hasRoute(_ node: Int, _ method: HTTPMethod) -> Bool {
            routes[node * Self.methodCount + method.slot] != nil
        }

        func route(_ node: Int, _ method: HTTPMethod) -> Route? {
            routes[node * Self.methodCount + method.slot]
        }
    }

    /// Mutable node used only while building.
    private final class Draft {
        var literals: [Substring: Draft] = [:]
        var parameter: (name: String, node: Draft)?
        var methods: [HTTPMethod: Route] = [:]
    }

    private let trie: Trie
    private let fallback: Handler?
    private let apiPrefix: String
    /// `apiPrefix` as bytes, for `isAPI` on the C string libmicrohttpd hands over.
    private let apiPrefixBytes: [UInt8]
    public let routes: [RouteInfo]

    init(entries: [Route], fallback: Handler?, apiPrefix: String) {
        let draft = Draft()
        for route in entries {
            var node = draft
            for segment in route.info.path.split(separator: "/") {
                if segment.first == "{", segment.last == "}" {
                    let name = String(segment.dropFirst().dropLast())
                    if let existing = node.parameter {
                        precondition(existing.name == name, "conflicting parameter names at \(route.info.path)")
                        node = existing.node
                    } else {
                        let child = Draft()
                        node.parameter = (name, child)
                        node = child
                    }
                } else if let child = node.literals[segment] {
                    node = child
                } else {
                    let child = Draft()
                    node.literals[segment] = child
                    node = child
                }
            }
            node.methods[route.info.method] = route
        }
        trie = Trie(draft)
        self.fallback = fallback
        self.apiPrefix = apiPrefix
        apiPrefixBytes = Array(apiPrefix.utf8)
        routes = entries.map(\.info)
    }

    /// Whether a (decoded) path is under the API prefix: its answers are data, never cached.
    func isAPI(_ path: UnsafePointer<CChar>) -> Bool {
        apiPrefixBytes.withUnsafeBufferPointer { prefix in
            prefix.withMemoryRebound(to: CChar.self) { strncmp(path, $0.baseAddress!, prefix.count) == 0 }
        }
    }

    /// Dispatches one request; every thrown error becomes the JSON error shape.
    public func respond(to request: Request) -> Response {
        do {
            return try dispatch(request)
        } catch let error as HTTPError {
            return error.response
        } catch {
            return HTTPError(.internalServerError, code: "internal_error", message: String(describing: error)).response
        }
    }

    private func dispatch(_ request: Request) throws -> Response {
        var path = request.path
        path.makeContiguousUTF8()
        let found = path.utf8.withContiguousStorageIfAvailable { match($0) } ?? nil
        if let (node, parameters) = found, trie.nodes[node].isRoute {
            let method: HTTPMethod = request.method == .HEAD && !trie.hasRoute(node, .HEAD) ? .GET : request.method
            guard let route = trie.route(node, method) else {
                var allowed = HTTPMethod.allCases.filter { trie.hasRoute(node, $0) }.map(\.rawValue).sorted()
                if trie.hasRoute(node, .GET), !trie.hasRoute(node, .HEAD) { allowed.append("HEAD"); allowed.sort() }
                throw HTTPError(
                    .methodNotAllowed, code: "method_not_allowed",
                    message: "\(request.method.rawValue) is not allowed on \(request.path)",
                    headers: [("Allow", allowed.joined(separator: ", "))])
            }
            if parameters.isEmpty {
                return try Self.run(route.middleware[...], route.handler, request)
            }
            var request = request
            request.parameters = parameters
            return try Self.run(route.middleware[...], route.handler, request)
        }
        if let fallback, !request.path.hasPrefix(apiPrefix) {
            return try fallback(request)
        }
        throw HTTPError(.notFound, code: "not_found", message: "no route for \(request.path)")
    }

    /// What a request's head must pass before its body is read: the route's own body limit and
    /// its credential checks. nil when no route matches (static files, or a 404 to come).
    struct BodyAdmission {
        var maxBodyBytes: Int?
        var authenticators: [any AuthenticatingMiddleware]
    }

    func bodyAdmission(method: HTTPMethod, path: String) -> BodyAdmission? {
        var path = path
        path.makeContiguousUTF8()
        guard let found = path.utf8.withContiguousStorageIfAvailable({ match($0) }) ?? nil,
            let route = trie.route(found.node, method)
        else { return nil }
        return BodyAdmission(maxBodyBytes: route.info.maxBodyBytes, authenticators: route.authenticators)
    }

    /// Walks the path's segments over its UTF-8 bytes: this runs on every request.
    private func match(_ path: UnsafeBufferPointer<UInt8>) -> (node: Int, parameters: [String: String])? {
        var parameters: [String: String] = [:]
        var node = 0
        var start = 0
        while start < path.count {
            var end = start
            while end < path.count, path[end] != UInt8(ascii: "/") { end += 1 }
            defer { start = end + 1 }
            if end == start { continue }
            let segment = UnsafeBufferPointer(rebasing: path[start..<end])
            if let child = trie.child(of: node, segment) {
                node = child
            } else if case let child = trie.nodes[node].parameterChild, child >= 0 {
                parameters[trie.parameterNames[node]] = String(decoding: segment, as: UTF8.self)
                node = child
            } else {
                return nil
            }
        }
        return (node, parameters)
    }

    private static func run(_ middleware: ArraySlice<any Middleware>, _ handler: Handler, _ request: Request) throws -> Response {
        guard let first = middleware.first else { return try handler(request) }
        return try first.handle(request) { try run(middleware.dropFirst(), handler, $0) }
    }
}

extension HTTPMethod {
    /// Position in `allCases`, for per-node route tables.
    var slot: Int {
        switch self {
        case .GET: 0
        case .HEAD: 1
        case .POST: 2
        case .PUT: 3
        case .PATCH: 4
        case .DELETE: 5
        case .OPTIONS: 6
        }
    }
}
