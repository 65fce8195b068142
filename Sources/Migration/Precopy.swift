import VMState

/// The machine a pre-copy streams, as the algorithm sees it: a guest on its CPU thread
/// (`LiveMachine`), or a scripted one in tests.
public protocol StreamedMachine: AnyObject {
    /// Whether the guest runs: a running guest is streamed in passes while it runs, a paused
    /// one in a single pass.
    var isGuestRunning: Bool { get }
    /// Turns the dirty log on and starts the stream on `sink`; the stream, and the pages the
    /// first pass sends (those that may hold data; the others are zero).
    func beginStream(to sink: ByteSink) throws -> (stream: PrecopyStream, firstPass: RAMPageBitmap)
    /// The pages written since the previous sync (QEMU's migration_bitmap_sync).
    func syncDirtyLog() throws -> RAMPageBitmap
    /// Parks the vCPU for the switch-over, unthrottled first; returns once it is parked.
    func pauseGuest()
    func resumeGuest()
    /// Auto-converge: the share of each time slice the vCPU sleeps, in percent (0: none).
    func throttleCPU(percentage: Double)
    /// The dirty log off and the vCPU unthrottled, once the stream ended either way.
    func endStream()
    /// With the guest parked, just before its last pages and devices go out: what must change at
    /// the same instant as the state streamed (a snapshot freezes the disk's overlay here).
    func willComplete() throws
}

extension StreamedMachine {
    public func willComplete() throws {}
}

/// The stream pre-copy writes: a QEVM stream's RAM sections and its end (`OutgoingMigration`).
public protocol PrecopyStream: AnyObject {
    /// Guest RAM, bytes (query-migrate's ram total).
    var ramBytes: UInt64 { get }
    /// Every byte written so far, framing included.
    var bytesWritten: UInt64 { get }
    var ramStats: RAMTransferStats { get }
    /// One RAM section with the pages of `dirtyPages` inside `range`, sent before it returns.
    func iterate(dirtyPages: RAMPageBitmap, in range: Range<Int>) throws
    /// With the guest parked: the last pages, every device, the end of the stream.
    @discardableResult
    func complete(remainingDirtyPages: RAMPageBitmap) throws -> RAMTransferStats
}

/// QEMU's auto-converge (migration/ram.c, migration_trigger_throttle): when the pages dirtied in
/// a period exceed `triggerThreshold` percent of the bytes sent in it, twice, the vCPU is
/// throttled — `initialPercentage` first, then `increment` more each time, up to QEMU's
/// max-cpu-throttle of 99. Two departures, for guests that dirty far faster than the link (one
/// that rewrites hundreds of MiB in the 10 ms a second it runs at 99% never converges in QEMU):
/// a step goes at least as far as the period's figures say is needed (the share QEMU's
/// cpu-throttle-tailslow calls cpu_ideal), and past 99 each step halves the vCPU's share, up to
/// `maximumPercentage`. The period is shorter than QEMU's second (docs/DECISIONS.md).
public struct AutoConverge: Sendable {
    public var enabled = true
    public var initialPercentage = 20.0
    public var increment = 10.0
    public var maximumPercentage = CPUThrottle.maximumPercentage
    public var triggerThreshold = 50.0
    public var period = Duration.milliseconds(200)
    public init() {}

    /// The step after `percentage`: 20, 30, … 90, 99, 99.5, 99.75, … `maximumPercentage`.
    func step(after percentage: Double) -> Double {
        let next: Double
        if percentage == 0 {
            next = initialPercentage
        } else if percentage < Self.qemuMaximum {
            next = min(percentage + increment, Self.qemuMaximum)
        } else {
            next = 100 - (100 - percentage) / 2
        }
        return min(next, maximumPercentage)
    }

    /// The throttle after `percentage` for a period that dirtied `dirtyBytes` while it sent
    /// `sentBytes`: the next step, or further if the vCPU's share must shrink more for its
    /// dirtying to fall to the threshold.
    func raise(from percentage: Double, dirtyBytes: Double, sentBytes: Double) -> Double {
        let share = (100 - percentage) * (sentBytes * triggerThreshold / 100) / max(dirtyBytes, 1)
        return min(max(step(after: percentage), 100 - share), maximumPercentage)
    }

    /// QEMU's max-cpu-throttle.
    static let qemuMaximum = 99.0
}

/// The pre-copy algorithm (QEMU's migration_iteration_run): RAM goes out in passes while the
/// guest runs, each pass the pages dirtied during the one before. A pass goes out in chunks; after
/// each (at most every `testInterval`) the dirty log is synced and the switch-over tested, as QEMU
/// tests after every iterate call: once what is left — the rest of the pass and the pages
/// dirtied meanwhile — fits the downtime limit at the measured bandwidth (and finishing the pass
/// would not halve it: an idle guest's pause is then the few pages it touched, not the limit), or
/// after `maxPasses`, the guest is parked for those pages and the devices. The bandwidth comes
/// from a `BandwidthMeter`.
public struct Precopy {
    public var maxPasses = 30
    /// Pages per RAM section: 1 MiB.
    public var chunkPages = 256
    public var testInterval = Duration.milliseconds(1)
    public var progressInterval = Duration.milliseconds(100)
    /// How long a rate is measured before it is believed (QEMU's BUFFER_DELAY).
    public var bandwidthWindow = Duration.milliseconds(100)
    public var autoConverge = AutoConverge()
    /// A snapshot's switch-over copies the last pages and the devices into memory (up to
    /// `captureLimit` bytes) and lets the guest run on before writing them: its pause then never
    /// waits for a disk that stalls on writeback. A migration's guest must wait for the destination.
    public var resumesBeforeWriting = false
    public var captureLimit = 64 << 20
    public let clock: TransferClock

    public init(clock: TransferClock = SystemTransferClock()) {
        self.clock = clock
    }

    /// For a snapshot file: the guest runs on once its last state is in memory.
    public static var snapshot: Precopy {
        var precopy = Precopy()
        precopy.resumesBeforeWriting = true
        return precopy
    }

    /// Streams `machine` to `sink`. Returns with the guest parked if it ran (`parkedGuest`) — the
    /// caller resumes it (snapshot) or hands it over (migration) — unless it `resumesBeforeWriting`.
    /// On error a guest parked here is resumed.
    public func run(
        _ machine: StreamedMachine, to sink: ByteSink, transfer: TransferControl,
        progress: (TransferStats) -> Void
    ) throws -> TransferStats {
        let start = clock.now()
        var stats = TransferStats()
        let wasRunning = machine.isGuestRunning
        let capture = resumesBeforeWriting ? SwitchOverCapture(sink) : nil
        let (stream, firstPass) = try machine.beginStream(to: capture ?? sink)
        defer { machine.endStream() }
        var parkedHere = false
        do {
            stats.total = stream.ramBytes
            stats.setupTimeMs = (clock.now() - start).milliseconds
            stats.status = "active"
            progress(stats)
            if wasRunning {
                let remaining = try iterate(machine, stream, firstPass, transfer, &stats, since: start, progress)
                try switchOver(machine, stream, remaining, capture, &stats, parkedHere: &parkedHere, progress)
            } else {
                // Already paused (or never started): everything in one go, no downtime to speak of.
                stats.status = "device"
                try machine.willComplete()
                try stream.complete(remainingDirtyPages: firstPass)
                stats.downtimeMs = 0
            }
            stats.remaining = 0
            update(&stats, stream, since: start)
            // Everything sent over the whole transfer (the last window alone is a burst into
            // socket buffers: 20 Gbit/s under a 40 MiB/s cap). QEMU leaves its setup out; here the
            // setup sends the header, so leaving its time out would put a small guest's figure
            // over the cap it was held to.
            let elapsed = (clock.now() - start).seconds
            if elapsed > 0 { stats.mbps = Double(stats.transferred) * 8 / elapsed / 1e6 }
            stats.status = "completed"
            progress(stats)
            return stats
        } catch {
            if parkedHere { machine.resumeGuest() }
            throw error
        }
    }

    /// The vCPU parked, the pages the passes left and those dirtied until it stopped go out with
    /// the devices; a snapshot's guest runs on as soon as they are held in memory.
    private func switchOver(
        _ machine: StreamedMachine, _ stream: PrecopyStream, _ remaining: RAMPageBitmap,
        _ capture: SwitchOverCapture?, _ stats: inout TransferStats, parkedHere: inout Bool,
        _ progress: (TransferStats) -> Void
    ) throws {
        let pauseStart = clock.now()
        machine.pauseGuest()
        parkedHere = true
        stats.parkedGuest = true
        stats.status = "device"
        // The caller learns the guest is parked (a migration bounds the wait from here).
        progress(stats)
        var last = remaining
        last.formUnion(try machine.syncDirtyLog())
        stats.dirtySyncCount += 1
        let bytes = last.count * (QEMUFileFormat.targetPageSize + 8)
        let held = bytes <= captureLimit ? capture : nil
        held?.hold(expected: bytes + (64 << 10))
        try machine.willComplete()
        try stream.complete(remainingDirtyPages: last)
        if held != nil {
            machine.resumeGuest()
            parkedHere = false
            stats.parkedGuest = false
        }
        stats.downtimeMs = (clock.now() - pauseStart).milliseconds
        try held?.release()
    }

    /// The passes, until the switch-over test passes; the pages left for the switch-over.
    private func iterate(
        _ machine: StreamedMachine, _ stream: PrecopyStream, _ firstPass: RAMPageBitmap,
        _ transfer: TransferControl, _ stats: inout TransferStats, since start: Duration,
        _ progress: (TransferStats) -> Void
    ) throws -> RAMPageBitmap {
        let pageSize = UInt64(QEMUFileFormat.targetPageSize)
        var pass = firstPass
        var dirtied = RAMPageBitmap(pageCount: pass.pageCount)
        var converge = Convergence(autoConverge, now: start, bytesSent: stream.bytesWritten)
        var lastReport = start
        var lastTest = start
        var meter = BandwidthMeter(window: bandwidthWindow, now: clock.now(), bytes: stream.bytesWritten)
        while true {
            stats.iterations += 1
            let passStart = clock.now()
            var cursor = 0
            repeat {
                if transfer.isCancelled { throw MigrationCancelled() }
                let end = pass.end(afterSetPages: chunkPages, from: cursor)
                if pass.count(from: cursor) > 0 {
                    try stream.iterate(dirtyPages: pass, in: cursor..<end)
                    // Those pages went out as they are now: a write reported by an earlier sync is
                    // in them, a later one will be reported again (QEMU clears a page's bit as it
                    // sends it). A guest that rewrote all its RAM early in a pass does not get it
                    // all sent twice.
                    dirtied.subtract(pass, in: cursor..<end)
                }
                cursor = end
                let now = clock.now()
                guard cursor == pass.pageCount || now - lastTest >= testInterval else { continue }
                lastTest = now
                let synced = try machine.syncDirtyLog()
                stats.dirtySyncCount += 1
                // What the switch-over would send now: the rest of this pass and everything dirtied.
                var left = dirtied
                left.formUnion(pass, from: cursor)
                // Auto-converge counts the pages this sync makes pending again, as QEMU's
                // num_dirty_pages_period counts the bits a sync newly sets: a page rewritten after
                // it went counts each time, one still waiting to go does not.
                let newlyDirtied = left.countAdded(by: synced)
                dirtied.formUnion(synced)
                left.formUnion(synced)
                let seconds = max(1e-6, (now - passStart).seconds)
                meter.record(bytes: stream.bytesWritten, at: now)
                stats.dirtyPagesRate = UInt64(Double(dirtied.count) / seconds)
                stats.remaining = UInt64(left.count) * pageSize
                let bandwidth = meter.bandwidth
                stats.mbps = bandwidth * 8 / 1e6
                // On the wire a page is its data and an 8-byte header.
                let wireBytes = Double(left.count) * Double(pageSize + 8)
                stats.expectedDowntimeMs = bandwidth > 0 ? UInt64(wireBytes / bandwidth * 1000) : 0
                if let percentage = converge.synced(dirtiedPages: newlyDirtied, now: now, bytesSent: stream.bytesWritten) {
                    machine.throttleCPU(percentage: percentage)
                    stats.cpuThrottlePercentage = percentage
                }
                update(&stats, stream, since: start)
                if now - lastReport >= progressInterval {
                    lastReport = now
                    progress(stats)
                }
                let limit = transfer.downtimeLimitMs.load(ordering: .relaxed)
                if stats.iterations >= maxPasses { return left }
                if stats.expectedDowntimeMs <= limit {
                    if cursor == pass.pageCount { return left }
                    // Mid-pass, once the rate means something, and unless finishing the pass would
                    // at least halve the pause (it leaves what is dirtied meanwhile, at this pass's rate).
                    let restSeconds = Double(pass.count(from: cursor)) * Double(pageSize) / max(bandwidth, 1)
                    let leftAtEnd = Double(dirtied.count) * (1 + restSeconds / seconds)
                    if meter.isSettled && leftAtEnd * 2 > Double(left.count) { return left }
                }
            } while cursor < pass.pageCount
            pass = dirtied
            dirtied.removeAll()
        }
    }

    private func update(_ stats: inout TransferStats, _ stream: PrecopyStream, since start: Duration) {
        stats.transferred = stream.bytesWritten
        stats.duplicate = stream.ramStats.duplicatePages
        stats.normal = stream.ramStats.normalPages
        stats.totalTimeMs = (clock.now() - start).milliseconds
    }
}

/// The link's rate as pre-copy judges it (QEMU measures it over 100 ms windows): the rate of the
/// last whole window, but never more than the transfer's rate so far. A file's page cache takes a
/// pass's first hundreds of MiB at memory speed and then holds the writer to the disk's, and a
/// socket's buffers take the first megabytes at once; neither is the link. Until a second window
/// has ended, the first one's buffered bytes still weigh in: `isSettled` says when they no longer do.
struct BandwidthMeter {
    let window: Duration
    private let start: Duration
    private let startBytes: UInt64
    private var windowStart: Duration
    private var windowBytes: UInt64
    private var windows = 0
    private var lastWindowRate = 0.0
    private var overall = 0.0

    init(window: Duration, now: Duration, bytes: UInt64) {
        self.window = window
        start = now
        startBytes = bytes
        windowStart = now
        windowBytes = bytes
    }

    mutating func record(bytes: UInt64, at now: Duration) {
        overall = Double(bytes - startBytes) / max(1e-6, (now - start).seconds)
        guard now - windowStart >= window else { return }
        lastWindowRate = Double(bytes - windowBytes) / (now - windowStart).seconds
        windowStart = now
        windowBytes = bytes
        windows += 1
    }

    /// Bytes per second.
    var bandwidth: Double { windows == 0 ? overall : min(lastWindowRate, overall) }
    var isSettled: Bool { windows >= 2 }
}

/// Auto-converge's bookkeeping: the pages made pending again in the current period (QEMU's
/// num_dirty_pages_period: a page counts each time a sync finds it dirtied after it went, so a
/// small working set rewritten after every pass counts as often as it is resent), the bytes sent
/// in it, and how many periods ran hot.
struct Convergence {
    let settings: AutoConverge
    private var periodStart: Duration
    private var bytesAtPeriodStart: UInt64
    private var dirtiedInPeriod = 0
    private var hotPeriods = 0
    private(set) var percentage = 0.0

    init(_ settings: AutoConverge, now: Duration, bytesSent: UInt64) {
        self.settings = settings
        periodStart = now
        bytesAtPeriodStart = bytesSent
    }

    /// After a sync that made `dirtiedPages` pages pending again: the new throttle percentage
    /// when it changes.
    mutating func synced(dirtiedPages: Int, now: Duration, bytesSent: UInt64) -> Double? {
        guard settings.enabled else { return nil }
        dirtiedInPeriod += dirtiedPages
        guard now - periodStart >= settings.period else { return nil }
        let dirtyBytes = Double(dirtiedInPeriod * QEMUFileFormat.targetPageSize)
        let sentBytes = Double(bytesSent - bytesAtPeriodStart)
        periodStart = now
        bytesAtPeriodStart = bytesSent
        dirtiedInPeriod = 0
        guard dirtyBytes > sentBytes * settings.triggerThreshold / 100 else { return nil }
        hotPeriods += 1
        guard hotPeriods >= 2 else { return nil }
        hotPeriods = 0
        let next = settings.raise(from: percentage, dirtyBytes: dirtyBytes, sentBytes: sentBytes)
        guard next != percentage else { return nil }
        percentage = next
        return next
    }
}
