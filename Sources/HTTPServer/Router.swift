/// A request handler: plain synchronous code that returns a response or throws an `HTTPError`.
/// Work that must wait answers `.deferred` or `.stream` instead of blocking.
public typealias Handler = @Sendable (Request) throws -> Response

/// Code that wraps handlers: authentication, logging, headers (Hummingbird's `handle(request, next)`).
public protocol Middleware: Sendable {
    func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response
}

/// Middleware that checks credentials; routes registered `public: true` skip it.
public protocol AuthenticatingMiddleware: Middleware {}

/// What a registered route is, for the dispatcher and for the OpenAPI document.
public struct RouteInfo: Sendable, Hashable {
    public var method: HTTPMethod
    /// The pattern as registered, `{name}` marking a parameter.
    public var path: String
    public var summary: String
    public var tag: String
    /// False for the few routes that answer without a token (health, login).
    public var requiresAuth: Bool
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
        precondition(!entries.contains { $0.info.method == entry.info.method && $0.info.path == entry.info.path },
                     "route registered twice: \(entry.info.method) \(entry.info.path)")
        entries.append(entry)
    }

    public func build(apiPrefix: String = "/api/") -> Router {
        Router(entries: entries.map { Router.Route(info: $0.info, middleware: $0.middleware, handler: $0.handler) },
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

    public func on(_ method: HTTPMethod, _ path: String, summary: String, public isPublic: Bool = false,
                   _ handler: @escaping Handler) {
        let info = RouteInfo(method: method, path: prefix + path, summary: summary, tag: tag, requiresAuth: !isPublic)
        let chain = isPublic ? middleware.filter { !($0 is any AuthenticatingMiddleware) } : middleware
        builder.add(.init(info: info, middleware: chain, handler: handler))
    }

    public func get(_ path: String, summary: String, public isPublic: Bool = false, _ handler: @escaping Handler) {
        on(.GET, path, summary: summary, public: isPublic, handler)
    }
    public func post(_ path: String, summary: String, public isPublic: Bool = false, _ handler: @escaping Handler) {
        on(.POST, path, summary: summary, public: isPublic, handler)
    }
    public func patch(_ path: String, summary: String, _ handler: @escaping Handler) {
        on(.PATCH, path, summary: summary, handler)
    }
    public func put(_ path: String, summary: String, _ handler: @escaping Handler) {
        on(.PUT, path, summary: summary, handler)
    }
    public func delete(_ path: String, summary: String, public isPublic: Bool = false, _ handler: @escaping Handler) {
        on(.DELETE, path, summary: summary, public: isPublic, handler)
    }
}

/// An immutable segment trie from paths to handlers; safe to share across the server's threads.
public struct Router: Sendable {
    struct Route: Sendable {
        var info: RouteInfo
        var middleware: [any Middleware]
        var handler: Handler
    }

    private final class Node: Sendable {
        let literals: [Substring: Node]
        let parameter: (name: String, node: Node)?
        let methods: [HTTPMethod: Route]

        init(literals: [Substring: Node], parameter: (name: String, node: Node)?, methods: [HTTPMethod: Route]) {
            self.literals = literals
            self.parameter = parameter
            self.methods = methods
        }
    }

    /// Mutable node used only while building.
    private final class Draft {
        var literals: [Substring: Draft] = [:]
        var parameter: (name: String, node: Draft)?
        var methods: [HTTPMethod: Route] = [:]

        func freeze() -> Node {
            Node(literals: literals.mapValues { $0.freeze() },
                 parameter: parameter.map { ($0.name, $0.node.freeze()) },
                 methods: methods)
        }
    }

    private let root: Node
    private let fallback: Handler?
    private let apiPrefix: String
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
        root = draft.freeze()
        self.fallback = fallback
        self.apiPrefix = apiPrefix
        routes = entries.map(\.info)
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
        var parameters: [String: String] = [:]
        var node = root
        var matched = true
        var rest = request.path[...]
        while matched, !rest.isEmpty {
            // Walk segments without building an array: this runs on every request.
            let end = rest.firstIndex(of: "/") ?? rest.endIndex
            let segment = rest[..<end]
            rest = end == rest.endIndex ? rest[end...] : rest[rest.index(after: end)...]
            if segment.isEmpty { continue }
            if let child = node.literals[segment] {
                node = child
            } else if let parameter = node.parameter {
                parameters[parameter.name] = String(segment)
                node = parameter.node
            } else {
                matched = false
            }
        }
        if matched, !node.methods.isEmpty {
            let method: HTTPMethod = request.method == .HEAD && node.methods[.HEAD] == nil ? .GET : request.method
            guard let route = node.methods[method] else {
                var allowed = node.methods.keys.map(\.rawValue).sorted()
                if node.methods[.GET] != nil, node.methods[.HEAD] == nil { allowed.append("HEAD"); allowed.sort() }
                throw HTTPError(.methodNotAllowed, code: "method_not_allowed",
                                message: "\(request.method.rawValue) is not allowed on \(request.path)",
                                headers: [("Allow", allowed.joined(separator: ", "))])
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

    private static func run(_ middleware: ArraySlice<any Middleware>, _ handler: Handler, _ request: Request) throws -> Response {
        guard let first = middleware.first else { return try handler(request) }
        return try first.handle(request) { try run(middleware.dropFirst(), handler, $0) }
    }
}

