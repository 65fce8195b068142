import EmulatorCore
import Foundation
import Logging
import Migration
import RISCV
import Synchronization

/// The source side of a live migration: pre-flight at the destination, then pre-copy over the
/// dirty bitmap on a ticketed socket, switch-over within the downtime limit, and the
/// destination's verdict. On any failure or cancel before GO the guest runs on here exactly as
/// before; after GO it is let go of only when the destination answers that it started it.
public final class OutgoingMigrations: Sendable {
    let registry: GuestRegistry
    let tasks: TaskManager
    let handOvers: HandOvers
    let peers: [PanelSettings.Peer]
    let logger: Logger
    /// Past the downtime limit, how long a parked guest may wait on a silent destination before
    /// the migration is given up and the guest runs on here (issue: a hung peer froze it 96 s);
    /// and how long on one that still says it is loading (SwitchOverLiveness).
    static let switchOverGrace = Duration.seconds(2)
    static let switchOverCap = Duration.seconds(30)

    /// A migration's downtime limit (ms) and bandwidth limit (bytes/s, 0 = unlimited).
    public static let downtimeLimits: ClosedRange<UInt64> = 1...60_000
    public static let bandwidthLimits: ClosedRange<UInt64> = 0...1_000_000_000_000_000

    init(registry: GuestRegistry, tasks: TaskManager, handOvers: HandOvers, peers: [PanelSettings.Peer], logger: Logger) {
        self.registry = registry
        self.tasks = tasks
        self.handOvers = handOvers
        self.peers = peers
        self.logger = logger
    }

    private var store: GuestStore { registry.store }
    private var events: EventBus { registry.events }

    /// What the destination is offered: the guest, and its backend's machine type and state
    /// descriptions (the destination runs the same checks on them as pre-flight).
    func offer(for guest: GuestRecord, migrationId: String? = nil, describing: Bool) throws -> JSON {
        var fields: [String: JSON] = [
            "guest": [
                "name": .string(guest.name), "image": .string(guest.image), "memoryMiB": .number(Double(guest.memoryMiB)),
                "icount": .bool(guest.icount),
            ],
            "backend": .string(guest.backend.rawValue),
            "disks": .array(guest.disks.map { ["id": .string($0.id), "sizeBytes": .number(Double($0.sizeBytes))] }),
            "switchOverHeartbeat": true,
            "streamWhenReady": true,
        ]
        fields.merge(try registry.backend(of: guest).offer(for: guest, describing: describing)) { $1 }
        if let migrationId { fields["migrationId"] = .string(migrationId) }
        return .object(fields)
    }

    /// Posts an offer with its state descriptions' digest, and again with their text when the
    /// destination asks for it (its own differ, or it is a release before digests).
    private func post(_ path: String, to peer: PeerClient, _ offer: (_ describing: Bool) throws -> JSON) throws -> JSON {
        do {
            return try peer.post(path, try offer(false))
        } catch let error as PeerError where StateDescriptions.isRequest(error) {
            return try peer.post(path, try offer(true))
        }
    }

    /// Go / no-go with reasons, before any RAM moves.
    public func preflight(_ id: String, target: MigrationTarget) throws -> JSON {
        let guest = try store.get(id)
        var local: [JSON] = try registry.backend(of: guest).localChecks(for: guest).map { check in
            ["name": .string(check.name), "ok": .bool(check.ok), "detail": .string(check.detail)]
        }
        local.append([
            "name": "guest state", "ok": .bool(guest.state == .running || guest.state == .paused),
            "detail": .string("the guest is \(guest.state.rawValue)"),
        ])
        let peer = try PeerClient.resolve(target, peers: peers)
        var remote: JSON = ["go": false, "checks": []]
        do {
            remote = try post("/migrations/incoming/preflight", to: peer) { try offer(for: guest, describing: $0) }
        } catch {
            local.append(["name": "destination", "ok": false, "detail": .string(String(describing: error))])
        }
        var checks = local
        if case .array(let theirs)? = remote["checks"] { checks += theirs }
        let reasons: [JSON] = checks.compactMap { check in
            guard check["ok"] == .bool(false) else { return nil }
            if case .string(let name)? = check["name"], case .string(let detail)? = check["detail"] { return .string("\(name): \(detail)") }
            return nil
        }
        return [
            "go": .bool(reasons.isEmpty), "checks": .array(checks), "reasons": .array(reasons),
            "destination": ["url": .string(peer.baseURL.absoluteString), "release": remote["release"] ?? .null],
        ]
    }

    public func migrate(_ id: String, target: MigrationTarget, downtimeLimitMs: UInt64, maxBandwidth: UInt64) throws -> TaskInfo {
        // Checked, looked up and reserved for the task under the guest's lock: no action or exit slips in between.
        try registry.withLifecycle(id) { _ in
            let guest = try store.get(id)
            try registry.backend(of: guest).refuseIfUnmigratable(guest, action: "migrate")
            guard let runtime = registry.registeredRuntime(of: guest) else {
                throw PanelError.invalidState("only a running or paused guest migrates (it is \(guest.state.rawValue))")
            }
            guard Self.downtimeLimits.contains(downtimeLimitMs), Self.bandwidthLimits.contains(maxBandwidth) else {
                throw PanelError(
                    .invalid, code: "invalid_transfer_limits",
                    message: "downtimeLimitMs must be 1...60000, maxBandwidth 0 (unlimited) ... 10^15 bytes/s")
            }
            let migration = OutgoingMigration(
                guest: guest, runtime: runtime, peer: try PeerClient.resolve(target, peers: peers),
                transfer: TransferControl(downtimeLimitMs: downtimeLimitMs, maxBandwidth: maxBandwidth),
                migrationId: Secrets.randomHex(bytes: 16))
            let summary = "offering \(guest.name) (\(guest.machineType)) to \(migration.peer.baseURL.absoluteString)"
            return try tasks.start(kind: "migrate", guestId: id, summary: summary, adjust: Self.adjuster(for: migration.transfer)) {
                [self] handle in
                try send(migration, handle: handle)
            }
        }
    }

    /// What a migration task works with, fixed when it was started.
    struct OutgoingMigration: Sendable {
        var guest: GuestRecord
        /// The machine streamed; the guest is handed over only while it is still the registered one.
        var runtime: any GuestRuntime
        var peer: PeerClient
        var transfer: TransferControl
        /// Names this migration on both hosts, so the source can ask what became of it.
        var migrationId: String
        var id: String { guest.id }
    }

    /// PATCH /tasks/{id} on a migration: the downtime limit and bandwidth, mid-flight.
    private static func adjuster(for transfer: TransferControl) -> @Sendable (JSON) throws -> Void {
        { settings in
            if case .number(let value)? = settings["downtimeLimitMs"] {
                guard let limit = value.wholeNumber(in: Self.downtimeLimits) else {
                    throw PanelError(.invalid, code: "invalid_downtime", message: "downtimeLimitMs must be 1...60000")
                }
                transfer.downtimeLimitMs.store(limit, ordering: .relaxed)
            }
            if case .number(let value)? = settings["maxBandwidth"] {
                guard let bandwidth = value.wholeNumber(in: Self.bandwidthLimits) else {
                    throw PanelError(.invalid, code: "invalid_bandwidth", message: "maxBandwidth must be 0 (unlimited) ... 10^15 bytes/s")
                }
                transfer.maxBandwidth.store(bandwidth, ordering: .relaxed)
            }
        }
    }

    private func send(_ migration: OutgoingMigration, handle: TaskHandle) throws -> JSON {
        let transfer = migration.transfer
        let (socket, destinationSaysReady) = try connect(migration)
        handle.log("the destination checked the offer and took the ticket; streaming state")
        // A cancel acts at once, even on a write or read blocked on a silent destination.
        handle.onCancel {
            transfer.cancelled.store(true, ordering: .relaxed)
            socket.shutdown()
        }
        let watchdog = SwitchOverWatchdog(socket: socket, transfer: transfer, grace: Self.switchOverGrace, cap: Self.switchOverCap)
        let disks = DiskTransferCount()
        let hasDisks = !migration.guest.disks.isEmpty
        let record: @Sendable (TransferStats) -> Void = { stats in
            var detail = stats.queryMigrate(under: transfer)
            if hasDisks, case .object(var object) = detail {
                object["disk"] = disks.json
                detail = .object(object)
            }
            handle.progress(stats.progress, detail: detail)
        }
        let report: @Sendable (TransferStats) -> Void = { stats in
            // The guest parks for the switch-over (QEMU's source holds it from `completed` on):
            // from here a silent destination may hold it only for the downtime limit plus the grace;
            // stream bytes it takes are signs of life.
            if stats.status == "device" || stats.status == "completed" {
                watchdog.arm()
                watchdog.touch()
            }
            // The final figures are recorded once GO is out (or the migration failed): until
            // then each write would lengthen the guest's switch-over.
            if stats.status != "completed" { record(stats) }
        }
        try markMigrating(migration)
        var sentGO = false
        defer {
            watchdog.disarm()
            if !sentGO {
                runOnHere(after: migration)
                // Layers frozen for a migration that did not happen fold back into the guest's top.
                if hasDisks { registry.collectDiskLayersLogged(of: migration.id) }
            }
        }
        // 2a. The disks' chains, frozen now, go while the guest runs; the layer frozen at the
        // switch-over follows the stream (DiskChainTransfer).
        let switchOverFreeze = try hasDisks ? sendDiskChains(migration, on: socket, count: disks, handle: handle, report: report) : nil
        var stats: TransferStats
        do {
            stats = try Self.stream(
                migration, to: socket, awaitingReady: destinationSaysReady, report: report, watchdog: watchdog, diskFreeze: switchOverFreeze)
        } catch {
            settle(switchOverFreeze, of: migration)
            throw error
        }
        settle(switchOverFreeze, of: migration)
        var finalFiguresRecorded = false
        defer { if !finalFiguresRecorded { record(stats) } }
        // A guest that powered off meanwhile sent its last moment: that is not handed over (no GO).
        guard isStillStreamed(migration) else {
            socket.shutdown()
            throw GuestEnded(during: "migration")
        }
        if let switchOverFreeze {
            try sendLastLayers(switchOverFreeze, of: migration, on: socket, count: disks, watchdog: watchdog)
            handle.log("sent the disk layers frozen at the switch-over: " + switchOverFreeze.frozen.map(\.overlay).joined(separator: ", "))
        }
        // 3. The destination's verdict; GO hands the guest over.
        let verdict: String
        do {
            verdict = try socket.readReply(touching: watchdog) ?? "ERR the destination closed the connection"
        } catch {
            throw watchdog.fired ? watchdog.timeout : error
        }
        guard verdict == "OK" else {
            if watchdog.fired { throw watchdog.timeout }
            throw PeerError(status: 0, message: verdict.hasPrefix("ERR ") ? String(verdict.dropFirst(4)) : verdict)
        }
        // Recorded before GO leaves: whatever happens from here, the guest cannot run here by itself
        // until the destination has said whether it runs it.
        try handOvers.begin(guestId: migration.id, peer: migration.peer, migrationId: migration.migrationId)
        sentGO = true
        let destinationID = try sendGO(migration, on: socket) {
            // Off the guest's way: the destination records it and resumes it meanwhile.
            record(stats)
            finalFiguresRecorded = true
            handle.log("the destination loaded the whole stream; GO sent")
        }
        handle.log("the destination started the guest as \(destinationID)")
        // 4. Only the destination's STARTED lets go of the copy here.
        try handOver(migration, destinationGuestId: destinationID, handle: handle)
        stats.status = "completed"
        var detail = stats.queryMigrate(under: transfer)
        if case .object(var object) = detail {
            object["destination"] = .string(migration.peer.baseURL.absoluteString)
            object["destinationGuestId"] = .string(destinationID)
            if hasDisks { object["disk"] = disks.json }
            detail = .object(object)
        }
        events.publish("guest.migrated-out", subject: migration.id, data: GuestRegistry.eventData(try store.get(migration.id)))
        return detail
    }

    /// 1. The destination checks again and hands out a one-time ticket for its stream port; and
    /// whether it will say READY before the stream.
    private func connect(_ migration: OutgoingMigration) throws -> (TCPSocket, saysReady: Bool) {
        let ticket = try post("/migrations/incoming", to: migration.peer) {
            try offer(for: migration.guest, migrationId: migration.migrationId, describing: $0)
        }
        guard case .string(let secret)? = ticket["ticket"], case .number(let portNumber)? = ticket["port"],
            let port = portNumber.wholeNumber(in: 1...65_535)
        else {
            throw PeerError(status: 0, message: "the destination sent no usable ticket and port")
        }
        let socket = try TCPSocket.connect(host: migration.peer.host, port: UInt16(port), timeout: 30)
        try socket.write(line: "EMUPANEL-MIGRATE 1 \(secret)")
        return (socket, ticket["streamWhenReady"] == .bool(true))
    }

    /// How long a destination may take from the ticket line to READY (its QEMU's start-up; the
    /// destination's own bound on that is 30 s, after which it says ERR).
    static let readyTimeout = 60.0

    /// 2. Waits for the destination's READY: its machine reads the stream from now on. Sending
    /// before it only filled the socket while the destination's QEMU started, and the source's
    /// first pass took CPU from that start-up. `ERR` instead says why it will not.
    private static func awaitReady(on socket: TCPSocket, transfer: TransferControl) throws {
        let deadline = Date().addingTimeInterval(readyTimeout)
        while true {
            let line: String?
            do {
                guard socket.waitForInput(until: deadline) else {
                    throw PeerError(status: 0, message: "not ready for the stream within \(Int(readyTimeout)) s")
                }
                // A byte at a time: what follows READY stays in the socket, where the QEMU source's
                // check for an ERR looks.
                line = try socket.readLineExactly(maximum: 4096)
            } catch {
                if transfer.isCancelled { throw MigrationCancelled() }
                throw error
            }
            if transfer.isCancelled { throw MigrationCancelled() }
            switch line {
            case "READY": return
            case "WAIT": continue
            case let line?:
                throw PeerError(status: 0, message: line.hasPrefix("ERR ") ? String(line.dropFirst(4)) : "answered '\(line)' instead of READY")
            case nil: throw PeerError(status: 0, message: "closed the connection before it was ready for the stream")
            }
        }
    }

    /// 2a. Freezes the guest's tops (a moment on its CPU thread), sends every layer of their
    /// chains, and makes the overlays the switch-over will swap in. The guest writes the new tops
    /// from the freeze on, whatever happens to the migration.
    private func sendDiskChains(
        _ migration: OutgoingMigration, on socket: TCPSocket, count: DiskTransferCount,
        handle: TaskHandle, report: @escaping @Sendable (TransferStats) -> Void
    ) throws -> DiskFreeze {
        let files = registry.diskFiles(migration.id)
        let first = try DiskFreeze(files: files, disks: try store.get(migration.id).disks)
        do {
            try migration.runtime.swapDisks(first)
        } catch {
            first.settle()
            throw error
        }
        first.settle()
        try store.update(migration.id) { $0.disks = first.next }
        let chains = try first.frozen.map { (disk: $0, files: try DiskChainTransfer.chain(from: $0.overlay, in: files)) }
        count.add(total: try DiskChainTransfer.size(of: chains, in: files))
        handle.log(
            "sending the disks' chains while the guest runs: "
                + chains.map { "\($0.disk.id): \($0.files.joined(separator: " <- "))" }.joined(separator: "; "))
        var setup = TransferStats()
        setup.status = "setup"
        var lastReport = Date.distantPast
        do {
            try DiskChainTransfer.send(chains, from: files, to: ThrottledSink(socket, transfer: migration.transfer)) { sent in
                count.add(sent: sent)
                if Date().timeIntervalSince(lastReport) > 0.1 { lastReport = Date(); report(setup) }
            }
        } catch {
            throw Self.destinationReason(on: socket, error)
        }
        report(setup)
        return try DiskFreeze(files: files, disks: first.next)
    }

    /// After the stream, the guest parked: the destination asks for the last layers (`DISKS`) once
    /// it has loaded the state, then they go.
    private func sendLastLayers(
        _ freeze: DiskFreeze, of migration: OutgoingMigration, on socket: TCPSocket,
        count: DiskTransferCount, watchdog: SwitchOverWatchdog
    ) throws {
        guard freeze.happened else { throw PeerError(status: 0, message: "the disks were not frozen at the switch-over") }
        let files = registry.diskFiles(migration.id)
        let chains = freeze.frozen.map { (disk: $0, files: [$0.overlay]) }
        count.add(total: try DiskChainTransfer.size(of: chains, in: files))
        do {
            let line = try socket.readReply(touching: watchdog)
            guard line == "DISKS" else {
                throw PeerError(
                    status: 0, message: line.map { $0.hasPrefix("ERR ") ? String($0.dropFirst(4)) : $0 } ?? "the destination closed the connection")
            }
            try DiskChainTransfer.send(chains, from: files, to: socket) {
                count.add(sent: $0)
                watchdog.touch()
            }
        } catch _ where watchdog.fired {
            throw watchdog.timeout
        }
    }

    /// The switch-over's freeze, either way: its files settled, and the record naming the tops the machine writes.
    private func settle(_ freeze: DiskFreeze?, of migration: OutgoingMigration) {
        guard let freeze else { return }
        freeze.settle()
        if freeze.happened { registry.recordTops(freeze.next, of: migration.id) }
    }

    /// The destination may have said why before it hung up (QEMU's source only sees EPIPE).
    private static func destinationReason(on socket: TCPSocket, _ error: any Error) -> any Error {
        if error is MigrationCancelled { return error }
        socket.setTimeouts(2)
        if let line = try? socket.readReply(touching: nil), line.hasPrefix("ERR ") {
            return PeerError(status: 0, message: String(line.dropFirst(4)))
        }
        return PeerError(status: 0, message: "the stream broke: \(error)")
    }

    /// 2. Pre-copy, then the guest parks for the last pages and the devices.
    private static func stream(
        _ migration: OutgoingMigration, to socket: TCPSocket, awaitingReady: Bool,
        report: @escaping @Sendable (TransferStats) -> Void, watchdog: SwitchOverWatchdog,
        diskFreeze: DiskFreeze? = nil
    ) throws -> TransferStats {
        let transfer = migration.transfer
        do {
            return try migration.runtime.send(
                over: socket, transfer: transfer, diskFreeze: diskFreeze,
                destinationReady: { if awaitingReady { try awaitReady(on: socket, transfer: transfer) } }, progress: report)
        } catch _ where watchdog.fired {
            throw watchdog.timeout
        } catch let error as MigrationCancelled {
            socket.shutdown()
            var stats = TransferStats()
            stats.status = "cancelled"
            report(stats)
            throw error
        } catch let error as PeerError {
            // The destination's own words (before READY): nothing more to read.
            throw error
        } catch {
            // The destination may have said why before it hung up (QEMU's source only sees EPIPE).
            socket.setTimeouts(2)
            if let line = try? socket.readReply(touching: nil), line.hasPrefix("ERR ") {
                throw PeerError(status: 0, message: String(line.dropFirst(4)))
            }
            throw PeerError(status: 0, message: "the stream broke: \(error)")
        }
    }

    /// GO, and the id the destination started the guest under; `whileStarting` runs once GO is
    /// out, while the destination starts the guest. Without its STARTED the guest may or may not
    /// run there: the destination is asked directly; only if that settles nothing does the guest
    /// stay parked here as `handoverUnknown`, for the background resolver or a person.
    private func sendGO(_ migration: OutgoingMigration, on socket: TCPSocket, whileStarting: () -> Void) throws -> String {
        let silence: any Error
        do {
            try socket.write(line: "GO")
            whileStarting()
            return try Self.awaitStarted(on: socket)
        } catch {
            silence = error
        }
        let record = HandOverRecord(
            guestId: migration.id, peerURL: migration.peer.baseURL.absoluteString,
            peerToken: migration.peer.token, migrationId: migration.migrationId)
        // The destination settles it within moments when it can (a stream that broke after OK is
        // discarded there at once): a few tries before leaving it to the background resolver.
        var verdict = handOvers.ask(record)
        for _ in 0..<4 where verdict == .undecided {
            Thread.sleep(forTimeInterval: 0.5)
            verdict = handOvers.ask(record)
        }
        switch verdict {
        case .runsThere(let guestId):
            logger.warning("STARTED was lost, but the destination runs the guest", metadata: ["guest": "\(migration.guest.name)"])
            return guestId
        case .neverStarted:
            runOnHere(after: migration, unknown: true)
            throw PeerError(status: 0, message: "did not start the guest (\(silence)); it runs on here")
        case .undecided:
            keepParkedHere(migration)
            handOvers.startResolving()
            throw PeerError(
                status: 0,
                message: "did not confirm that it started the guest (\(silence)); the guest is parked here "
                    + "in state handoverUnknown until \(migration.peer.baseURL.absoluteString) says whether it runs it, "
                    + "or until you confirm where it runs (POST /guests/\(migration.id)/resolve)")
        }
    }

    /// The destination's `STARTED <id>` after GO, or why it did not come.
    private static func awaitStarted(on socket: TCPSocket) throws -> String {
        guard let line = try socket.readLine() else { throw NotStarted(description: "it closed the connection") }
        guard line.hasPrefix("STARTED ") else {
            throw NotStarted(description: line.hasPrefix("ERR ") ? String(line.dropFirst(4)) : "it answered '\(line)'")
        }
        return String(line.dropFirst(8))
    }

    private struct NotStarted: Error, CustomStringConvertible { var description: String }

    /// Whether the guest is still on the machine this migration streams, with its CPU thread alive.
    private func isStillStreamed(_ migration: OutgoingMigration) -> Bool {
        registry.withLifecycle(migration.id) { _ in
            registry.isRegistered(migration.runtime, for: migration.id) && migration.runtime.isAlive
        }
    }

    /// Records the guest `migrating`, unless it stopped before the transfer began.
    private func markMigrating(_ migration: OutgoingMigration) throws {
        try registry.withLifecycle(migration.id) { _ in
            guard registry.isRegistered(migration.runtime, for: migration.id), migration.runtime.isAlive else {
                throw GuestEnded(during: "migration")
            }
            try registry.setState(migration.id, .migrating)
        }
    }

    /// Failed or cancelled before GO (or the destination said it never started it): the guest goes
    /// back to how it was, if it is still on this machine and its CPU thread alive. One that ended
    /// meanwhile was recorded stopped by its exit.
    private func runOnHere(after migration: OutgoingMigration, unknown: Bool = false) {
        registry.withLifecycle(migration.id) { _ in
            guard registry.isRegistered(migration.runtime, for: migration.id), migration.runtime.isAlive else { return }
            if migration.guest.state == .running {
                do {
                    try migration.runtime.resume()
                } catch {
                    logger.error("could not resume a guest after its migration failed", metadata: ["guest": "\(migration.id)", "error": "\(error)"])
                }
            }
            do {
                if unknown {
                    try handOvers.finish(guestId: migration.id, state: migration.guest.state)
                } else {
                    try registry.setState(migration.id, migration.guest.state)
                }
            } catch {
                logger.error("could not record a guest's state after a migration", metadata: ["guest": "\(migration.id)", "error": "\(error)"])
            }
        }
    }

    /// GO went out and nothing settles whether the destination runs the guest: it must not run
    /// here by itself. It stays parked, recorded `handoverUnknown` (since before GO).
    private func keepParkedHere(_ migration: OutgoingMigration) {
        registry.withLifecycle(migration.id) { _ in
            guard registry.isRegistered(migration.runtime, for: migration.id) else { return }
            try? migration.runtime.pause()
        }
        logger.error(
            "the destination did not confirm a migrated guest started; it is parked here until that is settled",
            metadata: ["guest": "\(migration.guest.name)"])
    }

    /// The destination runs the guest: the copy here stops for good. Unregistered, the parked
    /// copy is nobody's, so it ends off the task's path once the task is recorded (a QEMU's quit
    /// and exit took 6–11 ms of every migration's wall clock, and then still shared the CPUs with
    /// the task's last records), whatever the record's write does.
    private func handOver(_ migration: OutgoingMigration, destinationGuestId: String, handle: TaskHandle) throws {
        let (runtime, registry) = (migration.runtime, registry)
        defer { handle.afterFinish { registry.endDetached(runtime, threadName: "emupanel-migrated-out") } }
        try registry.withLifecycle(migration.id) { _ in
            _ = registry.unregister(migration.id, ifStill: runtime)
            try handOvers.finish(guestId: migration.id, state: .migrated, peerGuestId: destinationGuestId)
        }
    }
}

/// The guest's CPU thread ended (it powered off or failed) while its state went out.
struct GuestEnded: Error, CustomStringConvertible {
    var during: String
    var description: String { "the guest stopped during the \(during) (it powered off or failed); it stays stopped" }
}
