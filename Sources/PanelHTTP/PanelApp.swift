import EmulatorCore
import Foundation
import HTTPServer
import Logging
import PanelCore
import Synchronization

/// The panel served over HTTP: the services (PanelCore), credentials, and the server with every
/// route. Work that may block runs on the panel's worker pools, never on the server's threads.
public final class PanelApp: Sendable {
    public let configuration: PanelConfiguration
    public let token: AdminToken
    public let services: PanelServices
    public let server: HTTPServer
    let sessions: SessionStore
    let startedAt = Date()
    let boundAddress: BoundAddress
    let startupGate = StartupGate()
    /// Guests' lifecycle changes and anything else that may wait on a CPU thread or the disk.
    let workers = WorkerPool(name: "emupanel-work", threads: 4, queueLimit: 64)
    /// Calls to other hosts, which may wait for their timeout.
    let peerCalls = WorkerPool(name: "emupanel-peer", threads: MigrationController.maximumPeerCalls, queueLimit: 0)
    let logger: Logger

    public init(
        configuration: PanelConfiguration, machines: MachineRegistry = .empty,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        logger: Logger = Logger(label: "emupanel")
    ) throws {
        var configuration = configuration
        try configuration.applyListen()
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        let settings = configuration.settings
        token = try AdminToken.resolve(environment: environment, configured: configuration.token, dataDir: settings.dataDir)
        services = try PanelServices(settings: settings, machines: machines, listenHost: configuration.server.host, logger: logger)
        sessions = SessionStore(
            records: SessionRecords(database: services.database), lifetimeHours: settings.sessionHours,
            logger: logger)
        boundAddress = BoundAddress(host: configuration.server.host)
        let limiter = AuthFailureLimiter(policy: configuration.authRateLimit, logger: logger)
        let router = Self.makeRouter(
            configuration: configuration, token: token, sessions: sessions, limiter: limiter,
            services: services, workers: workers, peerCalls: peerCalls, boundAddress: boundAddress,
            startedAt: startedAt, startupGate: startupGate)
        server = HTTPServer(configuration: configuration.server, router: router, logger: logger)
    }

    private static func makeRouter(
        configuration: PanelConfiguration, token: AdminToken, sessions: SessionStore,
        limiter: AuthFailureLimiter, services: PanelServices, workers: WorkerPool, peerCalls: WorkerPool,
        boundAddress: BoundAddress, startedAt: Date, startupGate: StartupGate
    ) -> Router {
        let builder = RouterBuilder()
        let auth = AuthMiddleware(token: token.value, sessions: sessions, limiter: limiter)
        let api = builder.group("/api/v1", middleware: [PanelErrorMapping(), startupGate, auth])
        let openAPI = OpenAPIDocument()
        HostController(
            configuration: configuration, listenAddress: { boundAddress.text }, startedAt: startedAt,
            counts: { services.counts() }, limits: services.quotas.description, warnings: { services.recovery.warnings }
        )
        .addRoutes(to: api.group("", tag: "host"))
        MachineTypesController(catalog: services.machineTypes, workers: workers).addRoutes(to: api.group("", tag: "machine-types"))
        TasksController(tasks: services.tasks).addRoutes(to: api.group("", tag: "tasks"))
        GuestsController(guests: services.guests, lifecycle: services.lifecycle, workers: workers)
            .addRoutes(to: api.group("", tag: "guests"))
        SnapshotsController(snapshots: services.snapshots, workers: workers).addRoutes(to: api.group("", tag: "snapshots"))
        MigrationController(
            outgoing: services.outgoing, incoming: services.incoming, handOvers: services.handOvers,
            workers: workers, peerCalls: peerCalls
        )
        .addRoutes(to: api.group("", tag: "migration"))
        ImagesController(images: services.images).addRoutes(to: api.group("", tag: "images"))
        SessionController(token: token.value, sessions: sessions, limiter: limiter).addRoutes(to: api.group("", tag: "session"))
        EventsController(events: services.events, metrics: services.metrics, guests: services.guests)
            .addRoutes(to: api.group("", tag: "events"))
        MetricsController(metrics: services.metrics).addRoutes(to: api.group("", tag: "metrics"))
        openAPI.addRoutes(to: api.group("", tag: "docs"))

        let publicFiles = StaticFiles(root: configuration.publicDir)
        builder.setFallback { request in
            if let response = try publicFiles.respond(to: request) { return response }
            throw HTTPError.notFound("no file at \(request.path)")
        }
        let router = builder.build()
        openAPI.publish(router.routes)
        return router
    }

    public var events: EventBus { services.events }
    public var tasks: TaskManager { services.tasks }

    public func start() throws {
        // Bind first: a taken port must fail before any saved guest is resumed (its save file is
        // consumed). Changes wait at the gate until recovery is done, so none can race it.
        try server.start()
        boundAddress.port.store(server.port, ordering: .relaxed)
        sessions.servePort(server.port)
        services.recovery.recover(
            createDemoGuest: configuration.settings.demoGuest, handOvers: services.handOvers,
            tasks: services.tasks)
        startupGate.openUp()
        services.metrics.start()
        events.publish("host.started", data: ["release": .string(Release.current)])
    }

    /// Stops serving, cancels running tasks and waits for them (a migration past its hand-over
    /// finishes; one before it gives the guest back), then saves every running guest (libvirt's
    /// managed save) so the next start resumes it where it was.
    public func stop() {
        server.stop()
        workers.stop()
        peerCalls.stop()
        services.shutdown(logger: logger)
    }

    public var port: UInt16 { server.port }

    /// The session cookie's name: the port's, so panels on one machine keep their own sessions.
    public var sessionCookieName: String { sessions.cookieName }

    /// The URL that logs a browser in (the token travels in the fragment, never to the server's logs).
    public var loginURL: String {
        let host = configuration.server.host.contains(":") ? "[\(configuration.server.host)]" : configuration.server.host
        return "http://\(host):\(port)/#token=\(token.value)"
    }
}

/// The address the server actually bound (the kernel picks the port when configured with 0).
final class BoundAddress: Sendable {
    let host: String
    let port = Atomic<UInt16>(0)
    init(host: String) { self.host = host }
    var text: String {
        let port = port.load(ordering: .relaxed)
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
