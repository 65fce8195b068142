import Block
import EmulatorCore
import Foundation
import Logging
import Migration
import RISCV
import Synchronization
import VMState

/// The destination side of a live migration. The source first asks for a verdict (the machine
/// type known here, its tier, the static checker both ways, the image, the name); then for a
/// one-time ticket and a port. The stream arrives on that port, loads into a fresh machine that
/// has never run, and the guest starts here only after the source says GO — so it never runs
/// on both hosts, and anything short of a complete, valid stream is discarded. The guest's record is
/// reserved (state `migrating`) as soon as the ticket is presented, so after OK only the change to
/// `running` is left; the source lets go of its copy only on `STARTED`.
public final class IncomingMigrations: Sendable {
    let registry: GuestRegistry
    let lifecycle: GuestLifecycle
    let listenHost: String
    let logger: Logger
    /// Names of guests a ticket was handed out for and that have not arrived or failed yet.
    private let incomingNames = Mutex<Set<String>>([])
    /// Streams being received and not yet past OK, by guest name: a stopping panel cuts them.
    private let receiving = Mutex<[String: TCPSocket]>([:])
    /// Entered by each receiving thread; a stopping panel waits for them all.
    private let inFlight = DispatchGroup()
    private let stopping = Atomic<Bool>(false)
    /// At most this many migrations come in at once: each holds a port and a thread.
    public static let maximumIncoming = 4

    init(registry: GuestRegistry, lifecycle: GuestLifecycle, listenHost: String, logger: Logger) {
        self.registry = registry
        self.lifecycle = lifecycle
        self.listenHost = listenHost
        self.logger = logger
    }

    private var store: GuestStore { registry.store }
    private var events: EventBus { registry.events }

    public struct IncomingOffer: Codable, Sendable {
        public struct Guest: Codable, Sendable { var name: String; var image: String; var memoryMiB: Int; var icount: Bool }
        var guest: Guest
        var machineType: String
        var release: String
        /// The source's `-dump-vmstate` JSON for the machine type: sent when the destination asks
        /// for it (its own differ from `vmstateSHA256`), and always by releases before digests.
        var vmstate: String?
        /// SHA-256 of the source's state descriptions without indentation (StateDescriptions).
        var vmstateSHA256: String?
        /// The source's name for this migration; it asks about it by this id if the hand-over's
        /// answer is lost (absent from releases before 1.2's hand-over handling).
        var migrationId: String?
        /// What runs the guest (absent from releases before backends: the built-in core).
        var backend: Backend?
        /// QEMU guests: the source's binary name, its architecture and QEMU version.
        var binary: String?
        var arch: String?
        var qemuVersion: String?

        var backendKind: Backend { backend ?? .builtin }
        /// The guest's disks; their chains arrive around the stream (DiskChainTransfer). Absent
        /// from releases before disks.
        var disks: [OfferedDisk]?
        /// The source reads `WAIT` lines until the verdict (SwitchOverHeartbeat); absent from
        /// releases before it, which get none.
        var switchOverHeartbeat: Bool?
        /// The source streams only after this side's `READY` line (its machine reads from then
        /// on); absent from releases before it, which stream at once and get no such line.
        var streamWhenReady: Bool?
    }

    public struct OfferedDisk: Codable, Sendable { var id: String; var sizeBytes: Int64 }

    public struct Check: Encodable, Sendable {
        var name: String
        var ok: Bool
        var detail: String
    }

    /// QEMU's static checker both ways between the source's state descriptions and ours; a
    /// subsection missing on one side is no refusal (it travels only when needed). An offer with
    /// only the digest of descriptions that differ from ours throws `StateDescriptions.needed`.
    static func staticChecks(of offer: IncomingOffer, theirLabel: String, ours: StateDescriptions, ourLabel: String) throws -> [Check] {
        // The same build describes the same state: nothing to compare (QEMU's dump takes the
        // checker a while, and pre-flight and the offer each run it both ways).
        if offer.vmstateSHA256 == ours.sha256 || offer.vmstate.map(JSON.withoutWhitespace) == ours.compact {
            return [
                Check(name: "static check \(theirLabel) → \(ourLabel)", ok: true, detail: "identical state descriptions"),
                Check(name: "static check \(ourLabel) → \(theirLabel)", ok: true, detail: "identical state descriptions"),
            ]
        }
        guard let theirs = offer.vmstate else { throw StateDescriptions.needed }
        return [
            ("static check \(theirLabel) → \(ourLabel)", theirs, ours.compact), ("static check \(ourLabel) → \(theirLabel)", ours.compact, theirs),
        ]
        .map { label, old, new in
            do {
                let result = try VMStateCheck.check(old: old, new: new)
                let blocking = result.problems.filter { !$0.isMissingSubsection }
                return Check(
                    name: label, ok: blocking.isEmpty,
                    detail: result.problems.isEmpty ? "no problems" : result.problems.map(\.message).prefix(3).joined(separator: "; "))
            } catch {
                return Check(name: label, ok: false, detail: "a state description is unreadable: \(error)")
            }
        }
    }

    public struct Verdict: Encodable, Sendable {
        var go: Bool
        var release: String
        var checks: [Check]
        var reasons: [String] { checks.filter { !$0.ok }.map { "\($0.name): \($0.detail)" } }

        enum CodingKeys: String, CodingKey { case go, release, checks, reasons }
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(go, forKey: .go)
            try container.encode(release, forKey: .release)
            try container.encode(checks, forKey: .checks)
            try container.encode(reasons, forKey: .reasons)
        }
    }

    /// The destination's checks of an offer; throws `StateDescriptions.needed` for an offer that
    /// must come again with its state descriptions.
    public func verdict(_ offer: IncomingOffer) throws -> Verdict {
        let backend = try? registry.backends(offer.backendKind)
        var checks =
            try backend?.checks(of: offer)
            ?? [Check(name: "backend", ok: false, detail: "this host has no \(offer.backendKind.rawValue) backend")]
        let image = registry.images.images.first { $0.id == offer.guest.image }
        let bootable = image.map { $0.backends.contains(offer.backendKind) && (offer.arch == nil || offer.arch == $0.arch) } ?? false
        checks.append(
            Check(
                name: "image", ok: image?.available == true && bootable,
                detail: image.map {
                    !bootable
                        ? "\($0.name) does not boot on \(offer.backendKind.rawValue) \(offer.arch ?? "")"
                        : $0.available ? "\($0.name) is available" : ($0.unavailableReason ?? "unavailable")
                }
                    ?? "no image '\(offer.guest.image)' here"))
        let nameValid = (try? Names.validate(offer.guest.name, what: "guest")) != nil
        let taken = ((try? store.all()) ?? []).contains { $0.name == offer.guest.name }
        checks.append(
            Check(
                name: "name", ok: nameValid && !taken,
                detail: !nameValid
                    ? "'\(offer.guest.name)' is not a valid guest name"
                    : taken ? "a guest named '\(offer.guest.name)' exists here" : "free"))
        do {
            try lifecycle.quotas.checkGuest(memoryMiB: offer.guest.memoryMiB)
            checks.append(Check(name: "capacity", ok: true, detail: "within this host's limits"))
        } catch {
            checks.append(Check(name: "capacity", ok: false, detail: (error as? PanelError)?.message ?? "\(error)"))
        }
        if let disks = offer.disks, !disks.isEmpty {
            // Disks are the built-in core's: a QEMU offer's type has no slots here.
            let type = offer.backendKind == .builtin ? registry.machines.machineTypes.first { $0.name == offer.machineType } : nil
            let slots = type.map(VirtMachineTypes.driveSlots(in:)) ?? 0
            let sizesOK = disks.allSatisfy { DiskTemplate.sizes.contains($0.sizeBytes) }
            checks.append(
                Check(
                    name: "disks", ok: disks.count <= slots && sizesOK,
                    detail: "\(disks.count) disk(s) of \(disks.map { "\($0.sizeBytes >> 20) MiB" }.joined(separator: ", ")); "
                        + "\(offer.machineType) takes \(slots)"))
        }
        let range = backend?.memoryRange ?? GuestLifecycle.memoryRange
        let minimum = max(range.lowerBound, image?.minimumMemoryMiB ?? 0)
        let memoryOK = minimum <= range.upperBound && (minimum...range.upperBound).contains(offer.guest.memoryMiB)
        checks.append(
            Check(
                name: "memory", ok: memoryOK,
                detail: "\(offer.guest.memoryMiB) MiB" + (memoryOK ? "" : " (\(minimum)...\(range.upperBound) here)")))
        return Verdict(go: checks.allSatisfy(\.ok), release: Release.current, checks: checks)
    }

    public struct Ticket: Encodable, Sendable {
        var ticket: String
        var port: UInt16
        var release: String
        /// This side says `READY` before the stream (only to sources that asked: older ones
        /// would take the line for the verdict).
        var streamWhenReady: Bool?
    }

    /// Accepts a migration: opens a port on which the source must present `ticket` within 30 s.
    public func accept(_ offer: IncomingOffer) throws -> Ticket {
        guard !stopping.load(ordering: .acquiring) else {
            throw PanelError.busy("this host is shutting down", retryAfter: 30)
        }
        // The name first: a second offer of a guest under way is told so, whether or not the
        // first one's record is reserved yet.
        try holdIncomingName(offer.guest.name)
        let listener: TCPListener
        do {
            let verdict = try verdict(offer)
            guard verdict.go else {
                throw PanelError(.invalid, code: "migration_refused", message: verdict.reasons.joined(separator: "; "))
            }
            listener = try TCPListener(host: listenHost)
        } catch {
            releaseIncomingName(offer.guest.name)
            throw error
        }
        let ticket = Secrets.randomHex(bytes: 32)
        inFlight.enter()
        let thread = Thread { [self] in
            defer {
                releaseIncomingName(offer.guest.name)
                inFlight.leave()
            }
            receive(offer, listener: listener, ticket: ticket)
        }
        thread.name = "emupanel-incoming"
        thread.start()
        return Ticket(
            ticket: ticket, port: listener.port, release: Release.current, streamWhenReady: offer.streamWhenReady == true ? true : nil)
    }

    /// One ticket per guest name at a time, and a few in all: each holds a port and a thread for
    /// up to 30 s, and two sources sending the same name would race for it.
    private func holdIncomingName(_ name: String) throws {
        let refusal = incomingNames.withLock { names -> PanelError? in
            if names.contains(name) {
                return PanelError(.conflict, code: "migration_in_progress", message: "a guest named '\(name)' is already migrating here")
            }
            if names.count >= Self.maximumIncoming {
                return .busy("\(Self.maximumIncoming) migrations are already coming in; retry later", retryAfter: 5)
            }
            names.insert(name)
            return nil
        }
        if let refusal { throw refusal }
    }

    private func releaseIncomingName(_ name: String) {
        _ = incomingNames.withLock { $0.remove(name) }
    }

    /// How long a source has to connect and present its ticket.
    static let ticketDeadline = 30.0

    /// Waits for the source: a connection with a wrong ticket is answered and closed, and the port
    /// keeps listening for the right one until the deadline (one stray connection must not lock
    /// out the real source). The guest's record and runtime are made first, while the source
    /// connects (its bytes wait in the socket).
    private func receive(_ offer: IncomingOffer, listener: TCPListener, ticket: String) {
        defer { listener.close() }
        let arrival = Result { try arrive(offer) }
        var handedOn = false
        defer { if !handedOn, case .success(let arrival) = arrival { discard(arrival) } }
        let deadline = Date().addingTimeInterval(Self.ticketDeadline)
        var socket: TCPSocket?
        do {
            while true {
                let left = deadline.timeIntervalSinceNow
                guard left > 0, !stopping.load(ordering: .acquiring) else {
                    logger.warning("an incoming migration's source never presented its ticket", metadata: ["guest": "\(offer.guest.name)"])
                    return
                }
                let connection = try listener.accept(timeout: left)
                connection.setTimeouts(min(left, 10))
                // Not a byte past the line: the stream after it may be handed to QEMU as it is.
                let hello = try? connection.readLineExactly(maximum: 256)
                if let hello, Secrets.constantTimeEquals(hello, "EMUPANEL-MIGRATE 1 \(ticket)") {
                    socket = connection
                    break
                }
                logger.warning("refused a connection to an incoming migration's port without its ticket", metadata: ["guest": "\(offer.guest.name)"])
                try? connection.write(line: "ERR the migration ticket is not valid")
                connection.shutdown()
            }
            guard let socket else { return }
            socket.setTimeouts(30)
            // Whatever made the arrival fail, the source hears it on its connection.
            let ready = try arrival.get()
            handedOn = true
            try takeOver(offer, ready, from: socket)
        } catch {
            try? socket?.write(line: "ERR \(Self.oneLine(error))")
            logger.warning("incoming migration failed", metadata: ["error": "\(error)"])
        }
    }

    /// A stopping panel takes no more migrations, cuts those still streaming (their sources keep
    /// their guests), and waits for those past OK to finish their hand-over, so every guest that
    /// arrived is started — and then saved with the others.
    public func stopAndWait(timeout: Double) -> Bool {
        stopping.store(true, ordering: .releasing)
        for socket in receiving.withLock({ Array($0.values) }) { socket.shutdown() }
        return inFlight.wait(timeout: .now() + timeout) == .success
    }

    /// What became of the migration `id` here, for its source (SPEC §8 "Hand-over unknown").
    public func status(_ id: String) throws -> HandOverStatus {
        guard let guest = try store.all().first(where: { $0.migrationId == id }) else {
            throw PanelError(
                .notFound, code: "unknown_migration", message: "no migration \(id) came here (or it was discarded before its guest started)")
        }
        return HandOverStatus(migrationId: id, guestId: guest.id, state: guest.incoming ? .migrating : guest.state)
    }

    /// What an incoming guest has before its stream: its record, reserved (state `migrating`) so
    /// its name is held for the whole transfer, and — unless disk chains come first, which its
    /// machine is made over — the machine, ready to load.
    private struct Arrival {
        var guest: GuestRecord
        var runtime: (any GuestRuntime)?
    }

    private func arrive(_ offer: IncomingOffer) throws -> Arrival {
        var arrival = Arrival(guest: try reserveIncoming(offer), runtime: nil)
        guard (offer.disks ?? []).isEmpty else { return arrival }
        do {
            let runtime = try lifecycle.makeRuntime(for: arrival.guest)
            arrival.runtime = runtime
            return arrival
        } catch {
            discard(arrival)
            throw error
        }
    }

    /// Gives up on an arrival: its machine is ended (a QEMU loaded or waiting would otherwise
    /// stay, paused, beside the source's guest) and its record goes.
    private func discard(_ arrival: Arrival) {
        arrival.runtime?.stop()
        discardReservation(arrival.guest)
    }

    /// Loads the stream into a machine that never ran, answers OK, and starts the guest on the
    /// source's GO. The record was reserved before any of it, so once OK is sent nothing that
    /// can fail is left — the source may already have let go of its copy. Without a GO the
    /// arrival goes again.
    private func takeOver(_ offer: IncomingOffer, _ reserved: Arrival, from connection: TCPSocket) throws {
        var arrival = reserved
        let guest = arrival.guest
        var started = false
        defer { if !started { discard(arrival) } }
        let heartbeat = SwitchOverHeartbeat(socket: connection, enabled: offer.switchOverHeartbeat == true)
        defer { heartbeat.stop() }
        receiving.withLock { $0[guest.name] = connection }
        let cut = { [self] in _ = receiving.withLock { $0.removeValue(forKey: guest.name) } }
        if stopping.load(ordering: .acquiring) { connection.shutdown() }
        let runtime: any GuestRuntime
        let offered = (offer.disks ?? []).map { GuestDisk(id: $0.id, sizeBytes: $0.sizeBytes, overlay: "") }
        let files = registry.diskFiles(guest.id)
        var layers: [String: String] = [:]
        do {
            // The disks' chains come first; the machine starts on placeholder tops over them.
            var placeholders: [GuestDisk] = []
            if !offered.isEmpty {
                layers = try DiskChainTransfer.receive(from: connection, into: files, expected: offered)
                placeholders = try files.startOverlays(offered, over: offered.map { layers[$0.id]! })
                arrival.runtime = try lifecycle.makeRuntime(for: guest, disks: placeholders)
            }
            guard let made = arrival.runtime else { throw PanelError.invalidState("the incoming guest has no machine") }
            runtime = made
            // A source that waits for READY sends nothing to a machine still starting (a QEMU's
            // start-up then has the host's CPUs to itself). A source gone meanwhile ends the load.
            try runtime.receive(from: connection) {
                if offer.streamWhenReady == true { try? heartbeat.write(line: "READY") }
            }
            if !offered.isEmpty {
                // The layers frozen at the switch-over, then the guest's own tops over them.
                try heartbeat.write(line: "DISKS")
                let last = try DiskChainTransfer.receive(from: connection, into: files, expected: offered, below: layers)
                let tops = try files.startOverlays(offered, over: offered.map { last[$0.id]! })
                try runtime.replaceDisks(with: tops.map { files.layout.path($0.overlay) })
                files.remove(placeholders.map(\.overlay))
                try store.update(guest.id) { $0.disks = tops }
            }
        } catch {
            cut()
            throw stopping.load(ordering: .acquiring) ? PanelError.busy("the destination is shutting down", retryAfter: 30) : error
        }
        // Past this point a stopping panel waits for the hand-over instead of cutting it.
        cut()
        guard !stopping.load(ordering: .acquiring) else {
            throw PanelError.busy("the destination is shutting down", retryAfter: 30)
        }
        heartbeat.stop()
        try connection.write(line: "OK")
        guard try connection.readLine(maximum: 64) == "GO" else {
            throw NoGo()
        }
        let running = try start(incoming: guest, runtime)
        started = true
        events.publish("guest.migrated-in", subject: guest.id, data: GuestRegistry.eventData(running, extra: ["release": .string(offer.release)]))
        try? connection.write(line: "STARTED \(guest.id)")
    }

    /// The incoming guest's record, inserted now so its name is held for the whole transfer.
    private func reserveIncoming(_ offer: IncomingOffer) throws -> GuestRecord {
        let placement = try registry.backends(offer.backendKind).placement(of: offer)
        let image = try registry.images.image(offer.guest.image)
        let now = Date()
        let guest = GuestRecord(
            id: "g-" + UUID().uuidString.lowercased().prefix(8), name: offer.guest.name, image: image.id,
            machineType: placement.machineType, memoryMiB: offer.guest.memoryMiB, state: .migrating,
            icount: offer.guest.icount, resumeAtStart: false, pausedAtSave: false, currentSnapshot: nil, incoming: true,
            migrationId: offer.migrationId, createdAt: now, updatedAt: now,
            backend: offer.backendKind, binary: placement.binary)
        try store.insert(guest)
        events.publish("guest.created", subject: guest.id, data: GuestRegistry.eventData(guest))
        return guest
    }

    /// Records the guest running and starts its CPU, as `perform(.start)` does.
    private func start(incoming guest: GuestRecord, _ runtime: any GuestRuntime) throws -> GuestRecord {
        try registry.withLifecycle(guest.id) { _ in
            let running = try store.update(guest.id) {
                $0.incoming = false; $0.state = .running
            }
            events.publish("guest.state", subject: guest.id, data: GuestRegistry.eventData(running))
            registry.register(runtime, for: guest.id)
            // Past GO the guest is this host's: one whose machine will not run is recorded stopped here.
            try registry.startRegistered(runtime, for: guest.id, paused: false)
            return running
        }
    }

    private func discardReservation(_ guest: GuestRecord) {
        do {
            try registry.remove(guest)
        } catch {
            logger.error("could not remove the record of a failed incoming migration", metadata: ["guest": "\(guest.name)", "error": "\(error)"])
        }
    }

    private struct NoGo: Error, CustomStringConvertible {
        var description: String { "the source did not send GO" }
    }

    static func oneLine(_ error: any Error) -> String {
        String(describing: error).replacingOccurrences(of: "\n", with: " ")
    }
}
