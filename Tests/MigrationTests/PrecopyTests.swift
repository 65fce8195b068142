import Testing
import VMState

@testable import Migration

/// The pre-copy algorithm on simulated time: a scripted guest, a link of known bandwidth, a clock
/// that moves only with the bytes sent. Every figure is exact, so none of these depends on the machine.
@Suite struct PrecopyTests {
    let clock = ManualClock()
    /// 100 MB/s: a 1 MiB chunk (256 pages) takes about 10.5 ms.
    var link: TimedSink { TimedSink(clock: clock, bytesPerSecond: 100e6) }

    func precopy(autoConverge: Bool = false) -> Precopy {
        var precopy = Precopy(clock: clock)
        precopy.autoConverge.enabled = autoConverge
        return precopy
    }

    @Test func pausedGuestGoesOutInOneSectionWithoutSyncs() throws {
        let guest = ScriptedGuest(clock: clock, pageCount: 4096, populated: 0..<1000, running: false)
        let stats = try precopy().run(guest, to: link, transfer: TransferControl()) { _ in }
        #expect(guest.stream?.sections == [SentSection(final: true, pages: Array(0..<1000))])
        #expect(guest.syncs == 0)
        #expect(guest.events == ["begin", "end"], "never paused or resumed")
        #expect(stats.status == "completed" && !stats.parkedGuest && stats.downtimeMs == 0)
        #expect(stats.total == 4096 * 4096)
    }

    @Test func idleGuestSwitchesOverAfterTheFirstPassInChunks() throws {
        let guest = ScriptedGuest(clock: clock, pageCount: 4096, populated: 0..<1000)
        let stats = try precopy().run(guest, to: link, transfer: TransferControl(downtimeLimitMs: 1)) { _ in }
        let sections = try #require(guest.stream?.sections)
        #expect(sections.dropLast().map(\.pages.count) == [256, 256, 256, 232], "1 MiB chunks")
        #expect(sections.last == SentSection(final: true, pages: []), "nothing was dirtied")
        #expect(guest.events == ["begin", "pause", "end"])
        #expect(stats.iterations == 1 && stats.parkedGuest && stats.remaining == 0)
        #expect(stats.transferred == UInt64(5 * 13 + 1000 * 4104))
    }

    @Test func bandwidthAndExpectedDowntimeComeFromTheLink() throws {
        // 2048 pages/s over pages the first pass has not reached yet.
        let guest = ScriptedGuest(clock: clock, pageCount: 8192, populated: 0..<8192, workingSet: 4096..<6144, pagesPerSecond: 2048)
        var reports: [TransferStats] = []
        var precopy = precopy()
        precopy.progressInterval = .zero
        _ = try precopy.run(guest, to: link, transfer: TransferControl(downtimeLimitMs: 1)) { reports.append($0) }
        let active = reports.filter { $0.status == "active" && $0.dirtySyncCount > 0 }
        #expect(!active.isEmpty)
        for stats in active {
            // The link's 100 MB/s, framing included; the expected downtime is what is left at that rate.
            #expect(abs(stats.mbps - 800) < 1, "\(stats.mbps)")
            let expected = Double(stats.remaining) * 4104 / 4096 / 100e6 * 1000
            #expect(abs(Double(stats.expectedDowntimeMs) - expected) <= 1, "\(stats.expectedDowntimeMs) vs \(expected)")
        }
        // Remaining counts each page once: the rest of the pass and the dirtied pages overlap.
        let first = try #require(active.first)
        #expect(first.remaining == UInt64(8192 - 256) * 4096, "the dirtied pages are in the rest of the pass: counted once")
    }

    /// Megabytes a socket's buffers take at once say nothing of the link: a guest is not switched
    /// over in the middle of its first pass on the strength of the first chunks.
    @Test func theFirstMegabytesDoNotMakeTheBandwidth() throws {
        let guest = ScriptedGuest(clock: clock, pageCount: 8192, populated: 0..<8192, workingSet: 0..<8192, pagesPerSecond: 2e6)
        let sink = BufferedLink(link, buffered: 8 << 20)
        let stats = try precopy(autoConverge: true).run(guest, to: sink, transfer: TransferControl(downtimeLimitMs: 300)) { _ in }
        let sections = try #require(guest.stream?.sections)
        #expect(sections.count > 9, "the buffered 8 MiB (8 sections) did not end the pre-copy: \(sections.count) sections")
        #expect(stats.downtimeMs.map { $0 <= 300 } == true, "\(stats)")
    }

    /// The switch-over can come in the middle of a pass: then the rest of the pass and the pages
    /// dirtied meanwhile go out once, with the guest parked, and nothing is sent twice for nothing.
    @Test func switchOverMidPassSendsTheRestOfThePassOnce() throws {
        // 10,000 pages at ~24,000 pages/s; 300 ms fits ~7,300 of them. The guest rewrites its first
        // 4,000 pages all the time, so finishing the pass would not shrink what is left.
        let guest = ScriptedGuest(clock: clock, pageCount: 16384, populated: 0..<10000, workingSet: 0..<4000, pagesPerSecond: 1e5)
        let stats = try precopy().run(guest, to: link, transfer: TransferControl(downtimeLimitMs: 300)) { _ in }
        let sections = try #require(guest.stream?.sections)
        let iterated = sections.dropLast().flatMap(\.pages)
        let final = try #require(sections.last?.pages)
        #expect(stats.iterations == 1, "never got to a second pass")
        #expect(iterated == Array(0..<iterated.count), "the first pages of the pass, in order")
        #expect(iterated.count > 6000 && iterated.count < 8000, "\(iterated.count) sent before the switch-over")
        #expect(final == Array(0..<4000) + Array(iterated.count..<10000), "the dirtied pages and the rest of the pass, once")
        #expect(stats.downtimeMs.map { $0 <= 300 } == true, "\(stats)")
    }

    /// A guest that dirties little makes it worth finishing the pass: the pause is then those few
    /// pages, not all the limit allows.
    @Test func aQuietGuestFinishesThePassBeforeTheSwitchOver() throws {
        let guest = ScriptedGuest(clock: clock, pageCount: 16384, populated: 0..<10000, workingSet: 0..<64, pagesPerSecond: 200)
        let stats = try precopy().run(guest, to: link, transfer: TransferControl(downtimeLimitMs: 300)) { _ in }
        let sections = try #require(guest.stream?.sections)
        let live = sections.dropLast().flatMap(\.pages)
        #expect(live == Array(0..<live.count) && live.count > 9900, "all but the last chunk went live: \(live.count)")
        #expect(sections.last.map { $0.pages.count <= 64 + 256 } == true)
        #expect(stats.downtimeMs.map { $0 <= 11 } == true, "\(stats)")
    }

    /// A guest dirtying faster than the link never fits the limit: after `maxPasses` it is
    /// switched over anyway, and the pause is what it is.
    @Test func maxPassesEndsAPrecopyThatCannotConverge() throws {
        let guest = ScriptedGuest(clock: clock, pageCount: 8192, populated: 0..<8192, workingSet: 0..<8192, pagesPerSecond: 1e6)
        var precopy = precopy()
        precopy.maxPasses = 5
        let stats = try precopy.run(guest, to: link, transfer: TransferControl(downtimeLimitMs: 50)) { _ in }
        #expect(stats.iterations == 5)
        #expect(guest.throttleHistory.isEmpty, "auto-converge is off")
        #expect(guest.stream?.sections.last?.pages.count == 8192, "everything was dirty at the switch-over")
        #expect(guest.events == ["begin", "pause", "end"])
    }

    /// Auto-converge: two periods in a row that dirty more than half of what they sent raise the
    /// throttle, at least QEMU's steps (20%, then 10 points a time), further when the figures say
    /// so; a guest held down enough converges within the limit.
    @Test func autoConvergeThrottlesUntilPassesShrink() throws {
        // 40,000 pages/s over 32 MiB against a link of ~24,000 pages/s.
        let guest = ScriptedGuest(clock: clock, pageCount: 8192, populated: 0..<8192, workingSet: 0..<8192, pagesPerSecond: 40000)
        var precopy = precopy(autoConverge: true)
        precopy.maxPasses = 100
        let stats = try precopy.run(guest, to: link, transfer: TransferControl(downtimeLimitMs: 50)) { _ in }
        let history = guest.throttleHistory
        #expect(history.first.map { $0 >= 20 } == true)
        #expect(zip(history, history.dropFirst()).allSatisfy { $1 >= AutoConverge().step(after: $0) }, "\(history)")
        #expect(stats.cpuThrottlePercentage == history.last)
        #expect(stats.iterations < 100, "converged on its own")
        #expect(stats.expectedDowntimeMs <= 50)
        let last = try #require(guest.stream?.sections.last?.pages.count)
        #expect(last <= 1300, "\(last) pages at the switch-over: about 50 ms of the link")
    }

    /// A working set smaller than what a period sends, rewritten after every pass, never fits a
    /// tight limit either: QEMU counts a page each time it is dirtied again after it went (its
    /// num_dirty_pages_period adds the bits a sync newly sets), not once per period, so such a
    /// guest is throttled too. 8 MiB rewritten every 2 ms against a link that sends it in 85 ms.
    @Test func autoConvergeCountsPagesDirtiedAgainAfterTheyWent() throws {
        let guest = ScriptedGuest(clock: clock, pageCount: 8192, populated: 0..<8192, workingSet: 0..<2048, pagesPerSecond: 1e6)
        var precopy = precopy(autoConverge: true)
        precopy.maxPasses = 100
        let stats = try precopy.run(guest, to: link, transfer: TransferControl(downtimeLimitMs: 50)) { _ in }
        #expect(!guest.throttleHistory.isEmpty, "throttled")
        #expect(stats.iterations < 100, "converged: \(stats.iterations) passes")
        #expect(stats.expectedDowntimeMs <= 50)
        let last = try #require(guest.stream?.sections.last?.pages.count)
        #expect(last <= 1300, "\(last) pages at the switch-over: about 50 ms of the link")
    }

    @Test func autoConvergeLeavesAGuestThatConvergesAlone() throws {
        let guest = ScriptedGuest(clock: clock, pageCount: 8192, populated: 0..<8192, workingSet: 0..<256, pagesPerSecond: 40000)
        let stats = try precopy(autoConverge: true).run(guest, to: link, transfer: TransferControl(downtimeLimitMs: 50)) { _ in }
        #expect(guest.throttleHistory.isEmpty)
        #expect(stats.cpuThrottlePercentage == 0)
    }

    @Test func throttleStepsAsQEMUsThenHalveTheShareLeft() {
        var settings = AutoConverge()
        settings.period = .milliseconds(10)
        var convergence = Convergence(settings, now: .zero, bytesSent: 0)
        var steps: [Double] = []
        for period in 1...60 {
            // 256 KiB dirtied against 500 kB sent a period: barely hot.
            let sent = UInt64(500_000 * period)
            if let raised = convergence.synced(dirtiedPages: 64, now: .milliseconds(10 * period), bytesSent: sent) { steps.append(raised) }
        }
        #expect(
            steps == [20, 30, 40, 50, 60, 70, 80, 90, 99, 99.5, 99.75, 99.875, 99.9],
            "raised every second hot period, QEMU's steps to its 99, then halving the vCPU's share")
    }

    @Test func aStepGoesAsFarAsThePeriodSaysIsNeeded() {
        let settings = AutoConverge()
        // Dirtying 4x what was sent: the vCPU's share must fall to 1/8 of what it was for 50%.
        #expect(settings.raise(from: 0, dirtyBytes: 400, sentBytes: 100) == 87.5)
        #expect(settings.raise(from: 60, dirtyBytes: 400, sentBytes: 100) == 95)
        // Barely hot: QEMU's step.
        #expect(settings.raise(from: 0, dirtyBytes: 60, sentBytes: 100) == 20)
        #expect(settings.raise(from: 40, dirtyBytes: 60, sentBytes: 100) == 50)
        #expect(settings.raise(from: 99.8, dirtyBytes: 1e9, sentBytes: 1) == 99.9, "never past the maximum")
    }

    /// A snapshot's guest runs on as soon as its last pages and devices are in memory; they reach
    /// the file after that. Too much to hold, and they are written with the guest parked.
    @Test(arguments: [64 << 20, 1000])
    func snapshotSwitchOverWritesOnceTheGuestRunsOn(captureLimit: Int) throws {
        let guest = ScriptedGuest(clock: clock, pageCount: 1024, populated: 0..<100, workingSet: 0..<50, pagesPerSecond: 1e5)
        var precopy = precopy()
        precopy.resumesBeforeWriting = true
        precopy.captureLimit = captureLimit
        let sink = WatchedSink(link) { guest.note("write") }
        let stats = try precopy.run(guest, to: sink, transfer: TransferControl()) { _ in }
        let events = guest.events.split(separator: "write", omittingEmptySubsequences: false).map(Array.init)
        if captureLimit > 1000 {
            #expect(guest.events.suffix(4) == ["pause", "resume", "write", "end"], "\(guest.events)")
            #expect(!stats.parkedGuest)
        } else {
            #expect(guest.events.suffix(3) == ["pause", "write", "end"], "\(guest.events)")
            #expect(stats.parkedGuest, "the caller resumes it")
        }
        #expect(events.first == ["begin"])
        #expect(guest.stream?.sections.last?.pages == Array(0..<50), "the switch-over carried the dirtied pages")
    }

    @Test func cancelStopsBetweenChunksWithTheGuestRunning() throws {
        let guest = ScriptedGuest(clock: clock, pageCount: 8192, populated: 0..<8192, workingSet: 0..<8192, pagesPerSecond: 1e6)
        let transfer = TransferControl(downtimeLimitMs: 1)
        var reports = 0
        var precopy = precopy()
        precopy.progressInterval = .zero
        #expect(throws: MigrationCancelled.self) {
            _ = try precopy.run(guest, to: link, transfer: transfer) { _ in
                reports += 1
                if reports == 3 { transfer.cancelled.store(true, ordering: .relaxed) }
            }
        }
        #expect(guest.events == ["begin", "end"], "never parked")
        #expect(guest.isGuestRunning)
    }

    @Test func failureAfterTheSwitchOverResumesTheGuest() throws {
        let guest = ScriptedGuest(clock: clock, pageCount: 1024, populated: 0..<100)
        guest.failOnComplete = true
        #expect(throws: (any Error).self) {
            _ = try precopy().run(guest, to: link, transfer: TransferControl()) { _ in }
        }
        #expect(guest.events == ["begin", "pause", "resume", "end"])
        #expect(guest.isGuestRunning)
    }
}

/// ThrottledSink on simulated time: the bandwidth limit, no burst after sitting idle, a limit
/// changed mid-flight, and a cancel that lands while it waits.
@Suite struct ThrottledSinkTests {
    let clock = ManualClock()
    let chunk = [UInt8](repeating: 1, count: 64 << 10)

    func write(_ sink: ThrottledSink, times: Int) throws {
        for _ in 0..<times { try chunk.withUnsafeBytes { try sink.write($0) } }
    }

    @Test func unlimitedNeverWaits() throws {
        let sink = ThrottledSink(MemorySink(), transfer: TransferControl(), clock: clock)
        try write(sink, times: 100)
        #expect(clock.now() == .zero)
        #expect(sink.bytesSent == 100 * 64 << 10)
    }

    @Test func limitHoldsTheAverageRate() throws {
        let sink = ThrottledSink(MemorySink(), transfer: TransferControl(maxBandwidth: 1 << 20), clock: clock)
        try write(sink, times: 160)  // 10 MiB at 1 MiB/s
        let seconds = clock.now().seconds
        #expect(seconds > 9.8 && seconds < 10.1, "\(seconds) s")
    }

    /// The final figure once read 38 Mbit/s under a 32 Mbit/s cap: the setup's idle time had
    /// been credited, and the bytes after it went out in a burst.
    @Test func idleTimeIsNoCreditForABurst() throws {
        let sink = ThrottledSink(MemorySink(), transfer: TransferControl(maxBandwidth: 1 << 20), clock: clock)
        clock.advance(.milliseconds(500))
        let start = clock.now()
        try write(sink, times: 32)  // 2 MiB at 1 MiB/s, after half a second idle
        let took = clock.now() - start
        #expect(took >= .seconds(2), "\(took)")
    }

    @Test func gatheredWritesCountEveryPiece() throws {
        let sink = ThrottledSink(MemorySink(), transfer: TransferControl(maxBandwidth: 1 << 20), clock: clock)
        try chunk.withUnsafeBytes { piece in
            for _ in 0..<16 { try sink.write(gathering: Array(repeating: piece, count: 4)) }
        }
        #expect(sink.bytesSent == 4 << 20)
        #expect(abs(clock.now().seconds - 4) < 0.1, "\(clock.now())")
    }

    @Test func limitChangedMidFlightTakesEffect() throws {
        let transfer = TransferControl(maxBandwidth: 1 << 20)
        let sink = ThrottledSink(MemorySink(), transfer: transfer, clock: clock)
        try write(sink, times: 32)  // 2 MiB at 1 MiB/s
        let slow = clock.now()
        #expect(abs(slow.seconds - 2) < 0.1, "\(slow)")
        transfer.maxBandwidth.store(4 << 20, ordering: .relaxed)
        try write(sink, times: 64)  // 4 MiB: 4 s at the old limit, at most 1 s at the new one
        let fast = clock.now() - slow
        #expect(fast > .milliseconds(250) && fast <= .seconds(1), "\(fast)")
        transfer.maxBandwidth.store(0, ordering: .relaxed)
        let before = clock.now()
        try write(sink, times: 64)
        #expect(clock.now() == before, "lifted: no more waiting")
    }

    @Test func cancelEndsAWaitWithinAStep() throws {
        let transfer = TransferControl(maxBandwidth: 1024)
        let cancelling = CancellingClock(transfer: transfer, after: .milliseconds(250))
        let sink = ThrottledSink(MemorySink(), transfer: transfer, clock: cancelling)
        #expect(throws: MigrationCancelled.self) { try chunk.withUnsafeBytes { try sink.write($0) } }
        #expect(cancelling.now() <= .milliseconds(250) + ThrottledSink.cancelCheck, "a 64 s wait ended at \(cancelling.now())")
        #expect(sink.bytesSent == 0)
    }
}

/// A clock whose sleeps cancel the transfer once it has slept `after`.
final class CancellingClock: TransferClock {
    let inner = ManualClock()
    let transfer: TransferControl
    let after: Duration
    init(transfer: TransferControl, after: Duration) {
        self.transfer = transfer
        self.after = after
    }
    func now() -> Duration { inner.now() }
    func sleep(for duration: Duration) {
        inner.advance(duration)
        if inner.now() >= after { transfer.cancelled.store(true, ordering: .relaxed) }
    }
}
