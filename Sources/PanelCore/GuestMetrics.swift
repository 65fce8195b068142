import Foundation
import RISCV
import Synchronization

/// One interval of a guest's life (or the panel's) as the resource graphs show it.
public struct MetricsSample: Sendable, Codable, Equatable {
    /// When the interval ended, in seconds since 1970.
    public var time: Double
    /// Instructions the guest retired per second (for the host: all guests together).
    public var instructionsPerSecond: Double
    /// Guest RAM pages (4 KiB) written per second (for the host: all guests together).
    public var dirtyPagesPerSecond: Double
    /// Host CPU time of the guest's CPU thread (for the host: the whole panel process), in
    /// percent of one core, as `top` shows a thread.
    public var cpuPercent: Double
    /// Guest RAM the host holds in memory (for the host: the panel process's RSS).
    public var rssBytes: UInt64

    public init(time: Double, instructionsPerSecond: Double, dirtyPagesPerSecond: Double, cpuPercent: Double, rssBytes: UInt64) {
        self.time = time
        self.instructionsPerSecond = instructionsPerSecond
        self.dirtyPagesPerSecond = dirtyPagesPerSecond
        self.cpuPercent = cpuPercent
        self.rssBytes = rssBytes
    }
}

/// A guest's or the host's recent samples, oldest first.
public struct MetricsSeries: Sendable, Encodable, Equatable {
    public var intervalSeconds: Double
    public var samples: [MetricsSample]
}

/// What one sampling round found: the host, and each started guest that has a sample yet.
public struct MetricsRound: Sendable, Encodable, Equatable {
    public var host: MetricsSample
    public var guests: [String: MetricsSample]
}

/// Samples every started guest and the panel itself once per `interval` (Proxmox's pvestatd):
/// retired instructions and written pages from the guest's machine (one hop onto its CPU thread
/// between slices), CPU time of that thread from `/proc/self/task/<tid>/stat`, resident guest RAM
/// from `mincore`. Keeps the last `historyLength` samples of each and hands every round to
/// subscribers (the event stream). Nothing here runs on a guest's CPU thread but the short read.
public final class GuestMetrics: Sendable {
    public static let historyLength = 600
    public let interval: Double
    let registry: GuestRegistry

    /// Where the last sample of a started guest left its counters.
    private struct Baseline {
        var machine: ObjectIdentifier
        var threadID: Int32?
        var retired: UInt64
        var cpuTicks: UInt64
        var at: ContinuousClock.Instant
    }

    private struct State {
        var baselines: [String: Baseline] = [:]
        var history: [String: [MetricsSample]] = [:]
        var host: [MetricsSample] = []
        var hostTicks: UInt64?
        var hostAt: ContinuousClock.Instant?
        var subscribers: [UInt64: @Sendable (MetricsRound) -> Void] = [:]
        var nextSubscriber: UInt64 = 0
    }

    private let state = Mutex(State())
    /// One round at a time: the sampler thread and `sampleNow` callers (tests) take turns. Holds
    /// the last round and when it was taken.
    private let round = Mutex<(at: ContinuousClock.Instant, round: MetricsRound)?>(nil)
    private let stopped = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let running = Atomic<Bool>(false)

    init(registry: GuestRegistry, interval: Double) {
        self.registry = registry
        self.interval = interval
    }

    // MARK: Sampling

    /// Starts the sampling thread (not with an interval of 0: then only `sampleNow` samples).
    public func start() {
        guard interval > 0, !running.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let thread = Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                sampleNow()
                _ = wake.wait(timeout: .now() + interval)
            }
            finished.signal()
        }
        thread.name = "emupanel-metrics"
        thread.start()
    }

    /// Stops the sampling thread and waits for its round to end.
    public func stop() {
        guard running.load(ordering: .acquiring), !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wake.signal()
        finished.wait()
    }

    /// One round: every started guest and the host, kept and handed to subscribers.
    @discardableResult
    public func sampleNow() -> MetricsRound {
        round.withLock { last in
            let now = ContinuousClock.now
            // Rates over a few milliseconds are noise (CPU time comes in 10 ms ticks): a round
            // right after another (a caller between the thread's rounds) takes nothing new.
            if let last, now - last.at < Self.minimumInterval { return last.round }
            let time = Date().timeIntervalSince1970
            let guests = (try? registry.list()) ?? []
            var samples: [String: MetricsSample] = [:]
            for guest in guests where guest.state == .running || guest.state == .paused || guest.state == .migrating {
                guard let runtime = try? registry.runtime(guest.id),
                    let sample = sample(guest.id, runtime.machine, paused: guest.state == .paused, time: time, now: now)
                else { continue }
                samples[guest.id] = sample
            }
            let known = Set(guests.map(\.id))
            let started = Set(guests.filter { $0.state == .running || $0.state == .paused || $0.state == .migrating }.map(\.id))
            let host = hostSample(time: time, now: now, guests: samples.values)
            let round = MetricsRound(host: host, guests: samples)
            let subscribers = state.withLock { state -> [@Sendable (MetricsRound) -> Void] in
                // A stopped guest keeps its history (the graphs show how it ended); a deleted one does not.
                state.baselines = state.baselines.filter { started.contains($0.key) }
                state.history = state.history.filter { known.contains($0.key) }
                for (id, sample) in samples { Self.append(sample, to: &state.history[id, default: []]) }
                Self.append(host, to: &state.host)
                return Array(state.subscribers.values)
            }
            for deliver in subscribers { deliver(round) }
            last = (now, round)
            return round
        }
    }

    static let minimumInterval = Duration.milliseconds(100)

    private static func append(_ sample: MetricsSample, to list: inout [MetricsSample]) {
        list.append(sample)
        if list.count > historyLength { list.removeFirst(list.count - historyLength) }
    }

    /// A guest's sample, or nil on its first round (rates need two points) or when its machine is gone.
    private func sample(_ id: String, _ machine: LiveMachine, paused: Bool, time: Double, now: ContinuousClock.Instant) -> MetricsSample? {
        // Only a machine on its CPU thread: `onCPU` runs the body right here for one that is not,
        // and one not started yet may be loading a stream on another thread.
        guard machine.isRunning else { return nil }
        let identity = ObjectIdentifier(machine)
        let previous = state.withLock { $0.baselines[id] }
        guard let previous, previous.machine == identity else {
            // A new machine (started, restored, arrived): count from here.
            guard
                let first = try? machine.onCPU({ board -> (UInt64, Int32?) in
                    board.setDirtyPageCounting(true)
                    return (board.hart.state.retired, ThreadStat.currentThreadID())
                }), machine.isRunning
            else { return nil }  // ended meanwhile: the thread id may not be its CPU's
            let ticks = first.1.flatMap(ThreadStat.cpuTicks(thread:)) ?? 0
            state.withLock { $0.baselines[id] = Baseline(machine: identity, threadID: first.1, retired: first.0, cpuTicks: ticks, at: now) }
            return nil
        }
        // A paused guest retires nothing and writes nothing: its parked CPU is not woken to say so.
        var retired = previous.retired
        var dirty = 0
        if !paused {
            guard let read = try? machine.onCPU({ board in (board.hart.state.retired, board.takeDirtyPageCount()) }) else { return nil }
            (retired, dirty) = read
        }
        let ticks = previous.threadID.flatMap(ThreadStat.cpuTicks(thread:)) ?? previous.cpuTicks
        let seconds = max(0.001, ThreadStat.seconds(now - previous.at))
        state.withLock { $0.baselines[id] = Baseline(machine: identity, threadID: previous.threadID, retired: retired, cpuTicks: ticks, at: now) }
        return MetricsSample(
            time: time,
            // A reset starts the count again from 0: then all it retired is since the reset.
            instructionsPerSecond: Double(retired >= previous.retired ? retired - previous.retired : retired) / seconds,
            dirtyPagesPerSecond: Double(dirty) / seconds,
            cpuPercent: Double(ticks &- previous.cpuTicks) / ThreadStat.ticksPerSecond / seconds * 100,
            rssBytes: machine.machine.ram.residentBytes())
    }

    private func hostSample(time: Double, now: ContinuousClock.Instant, guests: some Collection<MetricsSample>) -> MetricsSample {
        let ticks = ThreadStat.processCPUTicks() ?? 0
        let (previousTicks, previousAt) = state.withLock { state in
            defer { state.hostTicks = ticks; state.hostAt = now }
            return (state.hostTicks, state.hostAt)
        }
        var cpu = 0.0
        if let previousTicks, let previousAt {
            cpu = Double(ticks &- previousTicks) / ThreadStat.ticksPerSecond / max(0.001, ThreadStat.seconds(now - previousAt)) * 100
        }
        return MetricsSample(
            time: time,
            instructionsPerSecond: guests.reduce(0) { $0 + $1.instructionsPerSecond },
            dirtyPagesPerSecond: guests.reduce(0) { $0 + $1.dirtyPagesPerSecond },
            cpuPercent: cpu, rssBytes: ThreadStat.processRSSBytes() ?? 0)
    }

    // MARK: Reading

    /// A guest's recent samples (empty until it has run for two rounds).
    public func series(guest id: String) throws -> MetricsSeries {
        _ = try registry.get(id)
        return MetricsSeries(intervalSeconds: interval, samples: state.withLock { $0.history[id] ?? [] })
    }

    /// The panel's own recent samples.
    public func hostSeries() -> MetricsSeries {
        MetricsSeries(intervalSeconds: interval, samples: state.withLock { $0.host })
    }

    /// Calls `deliver` with every round from now on, until `unsubscribe`; it runs on the sampling
    /// thread and must only hand the round on.
    public func subscribe(_ deliver: @escaping @Sendable (MetricsRound) -> Void) -> UInt64 {
        state.withLock { state in
            state.nextSubscriber += 1
            state.subscribers[state.nextSubscriber] = deliver
            return state.nextSubscriber
        }
    }

    public func unsubscribe(_ id: UInt64) {
        _ = state.withLock { $0.subscribers.removeValue(forKey: id) }
    }
}

extension APIExamples {
    public static let metricsSample = MetricsSample(
        time: date.timeIntervalSince1970, instructionsPerSecond: 2.5e8,
        dirtyPagesPerSecond: 120, cpuPercent: 99.5, rssBytes: 17_825_792)
    public static let metricsSeries = MetricsSeries(intervalSeconds: 1, samples: [metricsSample])
}
