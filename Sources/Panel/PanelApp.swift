import Foundation
import HTTPServer
import Logging

/// The panel: configuration, credentials, events and the HTTP server with every route.
public final class PanelApp: Sendable {
    public let configuration: PanelConfiguration
    public let token: AdminToken
    public let events: EventBus
    public let server: HTTPServer
    let sessions: SessionStore
    let startedAt = Date()
    let logger: Logger

    public init(configuration: PanelConfiguration, environment: [String: String] = ProcessInfo.processInfo.environment,
                logger: Logger = Logger(label: "emupanel")) throws {
        var configuration = configuration
        try configuration.applyListen()
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        token = try AdminToken.resolve(environment: environment, configured: configuration.token, dataDir: configuration.dataDir)
        events = EventBus()
        sessions = SessionStore(lifetimeHours: configuration.sessionHours)
        let router = Self.makeRouter(configuration: configuration, token: token.value, sessions: sessions,
                                     events: events, startedAt: startedAt)
        server = HTTPServer(configuration: configuration.server, router: router, logger: logger)
    }

    private static func makeRouter(configuration: PanelConfiguration, token: String, sessions: SessionStore,
                                   events: EventBus, startedAt: Date) -> Router {
        let builder = RouterBuilder()
        let api = builder.group("/api/v1", middleware: [AuthMiddleware(token: token, sessions: sessions)])
        let openAPI = OpenAPIDocument()
        HostController(configuration: configuration, startedAt: startedAt, counts: { HostCounts() })
            .addRoutes(to: api.group("", tag: "host"))
        SessionController(token: token, sessions: sessions).addRoutes(to: api.group("", tag: "session"))
        EventsController(events: events).addRoutes(to: api.group("", tag: "events"))
        openAPI.addRoutes(to: api.group("", tag: "docs"))

        let publicFiles = StaticFiles(root: configuration.publicDir)
        let vendorFiles = StaticFiles(root: "/usr/share/javascript/xterm", mountPoint: "/vendor/xterm/",
                                      cacheControl: "max-age=86400")
        builder.setFallback { request in
            if let response = try vendorFiles.respond(to: request) ?? publicFiles.respond(to: request) { return response }
            throw HTTPError.notFound("no file at \(request.path)")
        }
        let router = builder.build()
        openAPI.publish(router.routes)
        return router
    }

    public func start() throws {
        try server.start()
        events.publish("host.started", data: ["release": .string(Release.current)])
    }

    public func stop() {
        server.stop()
    }

    public var port: UInt16 { server.port }

    /// The URL that logs a browser in (the token travels in the fragment, never to the server's logs).
    public var loginURL: String {
        let host = configuration.server.host.contains(":") ? "[\(configuration.server.host)]" : configuration.server.host
        return "http://\(host):\(port)/#token=\(token.value)"
    }
}
