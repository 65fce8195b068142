// Guest RAM: one anonymous mapping (zero pages cost nothing until touched), a
// dirty-page log for live migration and the per-page caches of decoded
// instructions the interpreter runs from.
import CInterpreterCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

public enum MachineError: Error, Equatable, CustomStringConvertible {
    case invalidMemorySize(UInt64)
    case outOfMemory(UInt64)
    case imageDoesNotFit(name: String, address: UInt64, size: UInt64)
    case invalidELF(String)
    case unreadableFile(String)
    case unknownMachine(String)

    public var description: String {
        switch self {
        case .invalidMemorySize(let s): return "invalid memory size \(s) bytes (needs a multiple of 4 KiB, 1 MiB ... 2 GiB)"
        case .outOfMemory(let s): return "cannot allocate \(s) bytes of guest RAM"
        case .imageDoesNotFit(let name, let address, let size):
            return "\(name) (\(size) bytes at 0x\(String(address, radix: 16))) does not fit in guest RAM"
        case .invalidELF(let why): return "invalid ELF: \(why)"
        case .unreadableFile(let path): return "cannot read \(path)"
        case .unknownMachine(let name): return "unknown machine type '\(name)'"
        }
    }
}

public final class GuestRAM {
    public static let pageShift = 12
    public static let pageSize = 1 << pageShift

    public let region: MemoryRegion
    public let size: Int
    /// Host address of guest physical `region.base`.
    public let bytes: UnsafeMutableRawPointer
    public let pageCount: Int

    /// One bit per 4 KiB page, set when a store may have changed the page
    /// while logging is on (set when the write TLB entry is installed, so a
    /// TLB hit costs nothing extra).
    let dirtyBits: UnsafeMutablePointer<UInt64>
    let dirtyWords: Int
    /// The same marks again, for counting (the panel's dirty-pages-per-second graph): a transfer
    /// takes `dirtyBits`, the counter takes these, so neither steals pages from the other.
    let sampleBits: UnsafeMutablePointer<UInt64>
    // Read on every slow-path store; never written while a store runs (only by the CPU thread itself).
    @exclusivity(unchecked) public internal(set) var dirtyLogging = false
    /// Who wants stores logged: a transfer (its log is taken by syncs) and the dirty-page counter.
    @exclusivity(unchecked) private(set) var transferLogging = false
    @exclusivity(unchecked) private(set) var sampling = false

    func setLogging(transfer on: Bool) {
        transferLogging = on
        dirtyLogging = transferLogging || sampling
    }

    func setSampling(_ on: Bool) {
        sampling = on
        dirtyLogging = transferLogging || sampling
    }

    /// Decoded-instruction pages, one slot per halfword; nil until the page is
    /// first executed. A page with a cache is a "code page": the write TLB never
    /// maps it, so every store to it takes the slow path and invalidates slots.
    /// Each is `codePageCapacity` ops long: the slots, the page-end sentinel, and the JIT's
    /// block table (CInterpreterCore's EMU_CODE_PAGE_OPS), which dropping slots clears too.
    let codePages: UnsafeMutablePointer<UnsafeMutablePointer<Op>?>
    static let opsPerPage = pageSize / 2
    static let codePageCapacity = Int(EMU_CODE_PAGE_OPS)
    /// The hart's compiled code for this RAM's decoded pages (nil off x86-64 Linux): it lives
    /// and dies with the pages whose block tables point into it.
    let jit: OpaquePointer? = emu_jit_create()

    public init(region: MemoryRegion) throws {
        guard region.size >= 1 << 20, region.size <= 1 << 31, region.size % UInt64(GuestRAM.pageSize) == 0 else {
            throw MachineError.invalidMemorySize(region.size)
        }
        self.region = region
        size = Int(region.size)
        let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else { throw MachineError.outOfMemory(region.size) }
        bytes = p
        pageCount = size >> GuestRAM.pageShift
        dirtyWords = (pageCount + 63) / 64
        dirtyBits = .allocate(capacity: dirtyWords)
        dirtyBits.initialize(repeating: 0, count: dirtyWords)
        sampleBits = .allocate(capacity: dirtyWords)
        sampleBits.initialize(repeating: 0, count: dirtyWords)
        codePages = .allocate(capacity: pageCount)
        codePages.initialize(repeating: nil, count: pageCount)
    }

    deinit {
        emu_jit_destroy(jit)
        munmap(bytes, size)
        dirtyBits.deallocate()
        sampleBits.deallocate()
        for i in 0..<pageCount { codePages[i]?.deallocate() }
        codePages.deallocate()
    }

    @inline(__always)
    func pageIndex(physical pa: UInt64) -> Int { Int(truncatingIfNeeded: (pa &- region.base) >> UInt64(GuestRAM.pageShift)) }

    @inline(__always)
    func host(_ pa: UInt64) -> UnsafeMutableRawPointer { bytes + Int(truncatingIfNeeded: pa &- region.base) }

    @inline(__always)
    public func contains(_ pa: UInt64, count: Int = 1) -> Bool {
        let off = pa &- region.base
        return off < region.size && region.size - off >= UInt64(count)
    }

    // MARK: Host-side access (loaders, tests, snapshots)

    /// Copies `data` into guest RAM; the caller is the loader, so decoded
    /// instructions of the touched pages are dropped.
    public func write(_ data: some Collection<UInt8>, at pa: UInt64) throws {
        guard contains(pa, count: max(data.count, 1)) else {
            throw MachineError.imageDoesNotFit(name: "data", address: pa, size: UInt64(data.count))
        }
        let dst = host(pa).assumingMemoryBound(to: UInt8.self)
        var i = 0
        for b in data { dst[i] = b; i += 1 }
        invalidateCode(physical: pa, count: data.count)
        if dirtyLogging, !data.isEmpty {
            for page in pageIndex(physical: pa)...pageIndex(physical: pa &+ UInt64(data.count - 1)) { markDirty(pageIndex: page) }
        }
    }

    public func read(_ pa: UInt64, count: Int) -> [UInt8]? {
        guard contains(pa, count: max(count, 1)) else { return nil }
        return Array(UnsafeRawBufferPointer(start: host(pa), count: count))
    }

    /// Drops decoded instructions for a range (loaders, snapshot restore, DMA).
    public func invalidateCode(physical pa: UInt64, count: Int) {
        guard count > 0, contains(pa) else { return }
        let first = pageIndex(physical: pa)
        let last = min(pageCount - 1, pageIndex(physical: pa &+ UInt64(count - 1)))
        for i in first...last {
            guard let ops = codePages[i] else { continue }
            for slot in 0..<GuestRAM.opsPerPage { ops[slot] = .undecoded(at: slot << 1) }
            emu_jit_drop_blocks(ops)
        }
    }

    public func invalidateAllCode() { invalidateCode(physical: region.base, count: size) }

    /// All RAM back to zero (machine reset). Dropping the pages returns them
    /// to the host; the private anonymous mapping refills them with zeros.
    /// While a transfer logs dirty pages, every page that held data is logged, so the copy
    /// gets the zeros too (a guest rebooting mid-migration).
    public func clear() {
        if dirtyLogging {
            let populated = populatedBitmap()
            for word in 0..<dirtyWords {
                if transferLogging { dirtyBits[word] |= populated[word] }
                sampleBits[word] |= populated[word]
            }
        }
        if madvise(bytes, size, MADV_DONTNEED) != 0 {
            bytes.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        }
        invalidateAllCode()
    }

    // MARK: Populated pages

    /// Pages that may hold data: those the host's page table has present or swapped out
    /// (/proc/self/pagemap). A page the host never populated reads as zero, so a stream can
    /// leave it out and a first pass need not scan it. Without pagemap every page counts.
    /// Bit i of word i/64 = page i.
    func populatedBitmap() -> [UInt64] {
        var bitmap = [UInt64](repeating: 0, count: dirtyWords)
        let fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return allPagesBitmap() }
        defer { close(fd) }
        let hostPageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard hostPageSize == GuestRAM.pageSize else { return allPagesBitmap() }
        let presentOrSwapped: UInt64 = 0b11 << 62
        let chunk = 1 << 16
        let entries = UnsafeMutablePointer<UInt64>.allocate(capacity: chunk)
        defer { entries.deallocate() }
        let firstEntry = Int(bitPattern: bytes) / hostPageSize
        var page = 0
        while page < pageCount {
            let count = min(chunk, pageCount - page)
            let want = count * 8
            let got = pread(fd, entries, want, off_t(firstEntry + page) * 8)
            guard got == want else { return allPagesBitmap() }
            for i in 0..<count where entries[i] & presentOrSwapped != 0 {
                let p = page + i
                bitmap[p >> 6] |= 1 << UInt64(p & 63)
            }
            page += count
        }
        return bitmap
    }

    private func allPagesBitmap() -> [UInt64] {
        var bitmap = [UInt64](repeating: ~0, count: dirtyWords)
        let extra = dirtyWords * 64 - pageCount
        if extra > 0 { bitmap[dirtyWords - 1] = ~0 >> UInt64(extra) }
        return bitmap
    }

    // MARK: Dirty-page log

    @inline(__always)
    func markDirty(pageIndex i: Int) {
        // The counter's bits are cleared when counting starts, so marking them always is harmless.
        if transferLogging { dirtyBits[i >> 6] |= 1 << UInt64(i & 63) }
        sampleBits[i >> 6] |= 1 << UInt64(i & 63)
    }

    /// The dirty bitmap (bit i of word i/64 = page i), cleared as it is read.
    /// Must run on the CPU thread or while the CPU is stopped, and the hart's
    /// write TLB must be flushed with it (VirtMachine.fetchAndClearDirtyPages).
    func takeDirtyBitmap() -> [UInt64] {
        let out = Array(UnsafeBufferPointer(start: dirtyBits, count: dirtyWords))
        dirtyBits.update(repeating: 0, count: dirtyWords)
        return out
    }

    /// How many pages were written since the last call (while counting is on), cleared as it is
    /// read; the same rules as `takeDirtyBitmap` (CPU thread, write TLB flushed with it).
    func takeDirtySampleCount() -> Int {
        var count = 0
        for word in 0..<dirtyWords {
            count += sampleBits[word].nonzeroBitCount
            sampleBits[word] = 0
        }
        return count
    }

    // MARK: Residency

    /// Bytes of guest RAM the host holds in memory now (`mincore`): the guest's share of the
    /// panel's RSS. Safe from any thread: it asks the kernel, not the guest.
    public func residentBytes() -> UInt64 {
        let hostPageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let pages = (size + hostPageSize - 1) / hostPageSize
        var vector = [UInt8](repeating: 0, count: pages)
        guard mincore(bytes, size, &vector) == 0 else { return 0 }
        return UInt64(vector.reduce(0) { $0 + Int($1 & 1) }) * UInt64(hostPageSize)
    }
}
