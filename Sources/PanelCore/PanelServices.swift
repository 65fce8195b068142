import EmulatorCore
import Foundation
import Logging

/// The panel without HTTP: its database, events, tasks, images, machine types and guests, and
/// the services that change them. The HTTP adapter (PanelHTTP) and the command line both drive
/// these; none of it knows how a request arrived.
public final class PanelServices: Sendable {
    public let settings: PanelSettings
    public let database: PanelDatabase
    public let events: EventBus
    public let tasks: TaskManager
    public let images: ImageCatalog
    public let machineTypes: MachineTypeCatalog
    /// The QEMUs of this host; `startDiscovery()` at start.
    public let qemu: QEMUHost
    public let guests: GuestRegistry
    public let lifecycle: GuestLifecycle
    public let snapshots: SnapshotService
    public let outgoing: OutgoingMigrations
    public let incoming: IncomingMigrations
    public let recovery: Recovery
    public let quotas: Quotas
    public let handOvers: HandOvers
    /// The resource graphs' sampler; `start()` it once the guests are recovered.
    public let metrics: GuestMetrics

    /// `listenHost` is where incoming migration streams are accepted (the panel's own address).
    public init(
        settings: PanelSettings, machines: MachineRegistry, listenHost: String = "127.0.0.1",
        metricsInterval: Double = 1, logger: Logger = Logger(label: "emupanel")
    ) throws {
        try settings.validate()
        self.settings = settings
        try FileManager.default.createDirectory(
            atPath: settings.dataDir, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        database = try PanelDatabase(path: settings.dataDir + "/emupanel.sqlite")
        events = EventBus()
        tasks = try TaskManager(database: database, events: events, logger: logger)
        images = ImageCatalog(guestsDir: settings.guestsDir)
        qemu = QEMUHost(settings: settings, logger: logger)
        machineTypes = MachineTypeCatalog(
            machines: machines, policy: settings.deprecationPolicy, fixturesDir: settings.fixturesDir,
            qemu: qemu, peers: settings.peers)
        let dataDir = settings.dataDir
        var backends: [Backend: any GuestBackend] = [.builtin: BuiltinBackend(machines: machines)]
        if settings.qemu.enabled {
            backends[.qemu] = QEMUGuestBackend(host: qemu, guestDirectory: { GuestRegistry.guestDirectory($0, dataDir: dataDir) })
        }
        guests = GuestRegistry(
            database: database, images: images, machines: machines, backends: GuestBackends(all: backends), events: events,
            dataDir: settings.dataDir, logger: logger)
        quotas = Quotas(limits: settings.limits, registry: guests)
        lifecycle = GuestLifecycle(registry: guests, tasks: tasks, quotas: quotas, logger: logger)
        snapshots = SnapshotService(registry: guests, lifecycle: lifecycle, tasks: tasks)
        handOvers = HandOvers(registry: guests, logger: logger)
        outgoing = OutgoingMigrations(registry: guests, tasks: tasks, handOvers: handOvers, peers: settings.peers, logger: logger)
        incoming = IncomingMigrations(registry: guests, lifecycle: lifecycle, listenHost: listenHost, logger: logger)
        recovery = Recovery(registry: guests, lifecycle: lifecycle, settings: settings, logger: logger)
        metrics = GuestMetrics(registry: guests, interval: metricsInterval)
    }

    /// What the overview counts.
    public func counts() -> HostCounts {
        var counts = HostCounts()
        counts.activeTasks = tasks.activeCount
        counts.machineTypes = machineTypes.machines.machineTypes.count
        let all = (try? guests.list()) ?? []
        counts.guests = all.count
        counts.runningGuests = all.filter { $0.state == .running }.count
        counts.snapshots = (try? guests.snapshots.count()) ?? 0
        counts.snapshotBytes = (try? quotas.snapshotBytes()) ?? 0
        return counts
    }

    /// Cancels running tasks and waits for them (a migration past its hand-over finishes; one
    /// before it gives the guest back), then saves every started guest for the next start.
    public func shutdown(logger: Logger) {
        metrics.stop()
        if !tasks.cancelAllAndWait(timeout: 60) {
            logger.warning("tasks still running after 60 s; saving guests anyway")
        }
        // A guest arriving past its OK is started before the saves, so it is saved with the rest.
        if !incoming.stopAndWait(timeout: 60) {
            logger.warning("incoming migrations still under way after 60 s; saving guests anyway")
        }
        handOvers.stop()
        if !guests.waitForEndedMachines(timeout: 30) {
            logger.warning("machines a migration or a restore replaced still ending after 30 s")
        }
        recovery.saveAll()
    }
}

/// Totals shown on the overview; each module that owns a collection contributes its count.
public struct HostCounts: Sendable, Encodable, Equatable {
    public var machineTypes = 0
    public var guests = 0
    public var runningGuests = 0
    public var snapshots = 0
    /// Their state files and the disk layers they froze (what `limits.maxSnapshotBytes` bounds).
    public var snapshotBytes: Int64 = 0
    public var activeTasks = 0
    public init() {}
}
