// Stand-ins that let `Precopy` run without a CPU thread: a clock that moves only when told, a
// sink that takes time for its bytes at a set bandwidth, and a guest whose dirtying is scripted
// against that clock.
import Synchronization
import VMState

@testable import Migration

/// Simulated time: it moves when a sink takes time for its bytes or something sleeps on it.
final class ManualClock: TransferClock {
    private let time = Mutex(Duration.zero)
    func now() -> Duration { time.withLock { $0 } }
    func sleep(for duration: Duration) { advance(duration) }
    func advance(_ duration: Duration) { time.withLock { $0 += duration } }
}

/// A link of `bytesPerSecond`: every write takes its time on the clock.
final class TimedSink: ByteSink {
    let clock: ManualClock
    let bytesPerSecond: Double
    private(set) var count = 0

    init(clock: ManualClock, bytesPerSecond: Double) {
        self.clock = clock
        self.bytesPerSecond = bytesPerSecond
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        count += bytes.count
        clock.advance(.seconds(Double(bytes.count) / bytesPerSecond))
    }
}

/// A link behind a buffer: the first `buffered` bytes go at memory speed (a socket's buffers
/// take them), the rest at the link's rate.
final class BufferedLink: ByteSink {
    let link: TimedSink
    let buffer: TimedSink
    private var free: Int
    init(_ link: TimedSink, buffered: Int) {
        self.link = link
        buffer = TimedSink(clock: link.clock, bytesPerSecond: 10e9)
        free = buffered
    }
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        let fast = min(free, bytes.count)
        free -= fast
        try buffer.write(UnsafeRawBufferPointer(rebasing: bytes[..<fast]))
        try link.write(UnsafeRawBufferPointer(rebasing: bytes[fast...]))
    }
}

/// A sink that tells `onWrite` about every write on its way to `inner`.
final class WatchedSink: ByteSink {
    let inner: ByteSink
    let onWrite: () -> Void
    init(_ inner: ByteSink, onWrite: @escaping () -> Void) {
        self.inner = inner
        self.onWrite = onWrite
    }
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        onWrite()
        try inner.write(bytes)
    }
}

/// What the stream was asked to send: one entry per RAM section.
struct SentSection: Equatable {
    var final: Bool
    var pages: [Int]
}

/// A stream that records its sections and writes what a real one would to the sink (a page
/// record is its 8-byte header and 4096 bytes; a section adds 13 bytes of framing).
final class RecordingStream: PrecopyStream {
    let sink: ByteSink
    let pageCount: Int
    private(set) var sections: [SentSection] = []
    private(set) var bytesWritten: UInt64 = 0
    private(set) var ramStats = RAMTransferStats()
    var failOnComplete = false

    init(sink: ByteSink, pageCount: Int) {
        self.sink = sink
        self.pageCount = pageCount
    }

    var ramBytes: UInt64 { UInt64(pageCount * 4096) }

    func iterate(dirtyPages: RAMPageBitmap, in range: Range<Int>) throws {
        try send(dirtyPages, in: range, final: false)
    }

    func complete(remainingDirtyPages: RAMPageBitmap) throws -> RAMTransferStats {
        struct LinkDown: Error {}
        if failOnComplete { throw LinkDown() }
        try send(remainingDirtyPages, in: 0..<pageCount, final: true)
        return ramStats
    }

    private func send(_ bitmap: RAMPageBitmap, in range: Range<Int>, final: Bool) throws {
        let pages = range.filter { bitmap[$0] }
        sections.append(SentSection(final: final, pages: pages))
        let bytes = 13 + pages.count * 4104
        try [UInt8](repeating: 0x5a, count: bytes).withUnsafeBytes { try sink.write($0) }
        bytesWritten += UInt64(bytes)
        ramStats.normalPages += UInt64(pages.count)
        ramStats.bytes += UInt64(bytes)
    }

    /// Every page some section carried.
    var everyPageSent: Set<Int> { Set(sections.flatMap(\.pages)) }
}

/// A guest that rewrites the pages of `workingSet` in order, round and round, at `pagesPerSecond`
/// of simulated time, slowed by the throttle as QEMU's is (it runs 100 − percent of the time).
final class ScriptedGuest: StreamedMachine {
    let clock: ManualClock
    let pageCount: Int
    let populated: RAMPageBitmap
    let workingSet: [Int]
    let pagesPerSecond: Double
    var isGuestRunning: Bool
    private(set) var stream: RecordingStream?
    private(set) var throttleHistory: [Double] = []
    private(set) var syncs = 0
    private(set) var events: [String] = []
    var failOnComplete = false

    private var throttle = 0.0
    private var lastSync = Duration.zero
    private var writeCursor = 0.0

    init(
        clock: ManualClock, pageCount: Int, populated: Range<Int>, workingSet: Range<Int> = 0..<0,
        pagesPerSecond: Double = 0, running: Bool = true
    ) {
        self.clock = clock
        self.pageCount = pageCount
        var bitmap = RAMPageBitmap(pageCount: pageCount)
        for page in populated { bitmap.insert(page) }
        self.populated = bitmap
        self.workingSet = Array(workingSet)
        self.pagesPerSecond = pagesPerSecond
        isGuestRunning = running
    }

    func beginStream(to sink: ByteSink) throws -> (stream: PrecopyStream, firstPass: RAMPageBitmap) {
        events.append("begin")
        lastSync = clock.now()
        let stream = RecordingStream(sink: sink, pageCount: pageCount)
        stream.failOnComplete = failOnComplete
        self.stream = stream
        return (stream, populated)
    }

    func syncDirtyLog() throws -> RAMPageBitmap {
        syncs += 1
        var dirty = RAMPageBitmap(pageCount: pageCount)
        let now = clock.now()
        defer { lastSync = now }
        guard isGuestRunning, !workingSet.isEmpty else { return dirty }
        let written = (now - lastSync).seconds * pagesPerSecond * (100 - throttle) / 100
        let first = Int(writeCursor)
        writeCursor += written
        for step in first..<min(Int(writeCursor), first + workingSet.count) {
            dirty.insert(workingSet[step % workingSet.count])
        }
        return dirty
    }

    func pauseGuest() {
        events.append("pause")
        isGuestRunning = false
    }

    func resumeGuest() {
        events.append("resume")
        isGuestRunning = true
    }

    func throttleCPU(percentage: Double) {
        throttle = percentage
        throttleHistory.append(percentage)
    }

    func endStream() { events.append("end") }

    /// Something else that happened meanwhile, in order with the guest's events.
    func note(_ event: String) { events.append(event) }
}
