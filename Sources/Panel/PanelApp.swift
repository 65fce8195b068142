import EmulatorCore
import Foundation
import HTTPServer
import Logging
import Synchronization

/// The panel: configuration, credentials, events and the HTTP server with every route.
public final class PanelApp: Sendable {
    public let configuration: PanelConfiguration
    public let token: AdminToken
    public let events: EventBus
    public let database: PanelDatabase
    public let tasks: TaskManager
    public let images: ImageCatalog
    /// Every machine type this release knows; the board module (RISCV) provides them.
    public let machines: MachineRegistry
    public let guests: GuestManager
    public let server: HTTPServer
    let sessions: SessionStore
    let startedAt = Date()
    let boundAddress: BoundAddress
    let startupGate = StartupGate()
    let logger: Logger

    public init(configuration: PanelConfiguration, machines: MachineRegistry = .empty,
                environment: [String: String] = ProcessInfo.processInfo.environment,
                logger: Logger = Logger(label: "emupanel")) throws {
        var configuration = configuration
        try configuration.applyListen()
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        token = try AdminToken.resolve(environment: environment, configured: configuration.token, dataDir: configuration.dataDir)
        events = EventBus()
        try FileManager.default.createDirectory(atPath: configuration.dataDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        database = try PanelDatabase(path: configuration.dataDir + "/emupanel.sqlite")
        tasks = try TaskManager(database: database, events: events)
        sessions = SessionStore(lifetimeHours: configuration.sessionHours)
        boundAddress = BoundAddress(host: configuration.server.host)
        images = ImageCatalog(guestsDir: configuration.guestsDir)
        self.machines = machines
        guests = GuestManager(database: database, images: images, machines: machines, events: events, tasks: tasks,
                              configuration: configuration, logger: logger)
        let router = Self.makeRouter(configuration: configuration, token: token.value, sessions: sessions,
                                     events: events, tasks: tasks, images: images, machines: machines, guests: guests,
                                     boundAddress: boundAddress, startedAt: startedAt, startupGate: startupGate)
        server = HTTPServer(configuration: configuration.server, router: router, logger: logger)
    }

    private static func makeRouter(configuration: PanelConfiguration, token: String, sessions: SessionStore,
                                   events: EventBus, tasks: TaskManager, images: ImageCatalog,
                                   machines: MachineRegistry, guests: GuestManager, boundAddress: BoundAddress,
                                   startedAt: Date, startupGate: StartupGate) -> Router {
        let builder = RouterBuilder()
        let api = builder.group("/api/v1", middleware: [startupGate, AuthMiddleware(token: token, sessions: sessions)])
        let openAPI = OpenAPIDocument()
        HostController(configuration: configuration, listenAddress: { boundAddress.text }, startedAt: startedAt, counts: {
            var counts = HostCounts()
            counts.activeTasks = tasks.activeCount
            counts.machineTypes = machines.machineTypes.count
            let all = (try? guests.list()) ?? []
            counts.guests = all.count
            counts.runningGuests = all.filter { $0.state == .running }.count
            counts.snapshots = (try? guests.snapshots.count()) ?? 0
            return counts
        }).addRoutes(to: api.group("", tag: "host"))
        MachineTypesController(machines: machines, policy: configuration.deprecationPolicy,
                               fixturesDir: configuration.fixturesDir)
            .addRoutes(to: api.group("", tag: "machine-types"))
        TasksController(tasks: tasks).addRoutes(to: api.group("", tag: "tasks"))
        GuestsController(guests: guests).addRoutes(to: api.group("", tag: "guests"))
        SnapshotsController(guests: guests).addRoutes(to: api.group("", tag: "snapshots"))
        MigrationController(guests: guests, listenHost: configuration.server.host).addRoutes(to: api.group("", tag: "migration"))
        images.addRoutes(to: api.group("", tag: "images"))
        SessionController(token: token, sessions: sessions).addRoutes(to: api.group("", tag: "session"))
        EventsController(events: events).addRoutes(to: api.group("", tag: "events"))
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

    public func start() throws {
        // Bind first: a taken port must fail before any saved guest is resumed (its save file is
        // consumed). Changes wait at the gate until recovery is done, so none can race it.
        try server.start()
        boundAddress.port.store(server.port, ordering: .relaxed)
        guests.discardIncomingReservations()
        guests.removeInterruptedWrites()
        guests.resumeManagedSaves()
        if configuration.demoGuest { guests.createDemoGuestIfEmpty() }
        startupGate.openUp()
        events.publish("host.started", data: ["release": .string(Release.current)])
    }

    /// Stops serving, cancels running tasks and waits for them (a migration past its hand-over
    /// finishes; one before it gives the guest back), then saves every running guest (libvirt's
    /// managed save) so the next start resumes it where it was.
    public func stop() {
        server.stop()
        if !tasks.cancelAllAndWait(timeout: 60) {
            logger.warning("tasks still running after 60 s; saving guests anyway")
        }
        guests.shutdown()
    }

    public var port: UInt16 { server.port }

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
