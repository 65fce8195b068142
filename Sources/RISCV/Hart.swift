// One RV64IMAC hart. Its architectural state lives in one `State` value held
// at a stable address, so the interpreter reaches registers through plain
// pointers (no class-property exclusivity checks, no ARC in the loop), and a
// snapshot is `hart.state` (copy out) / `hart.state = s` (copy in).

/// A software TLB entry: guest virtual page -> host address of the RAM page.
/// `tag` is the page-aligned virtual address; `UInt64.max` marks it invalid
/// (its bits 3...11 are set, so no masked address can match it).
struct TLBEntry {
    var tag: UInt64
    var addend: UInt64  // host address = guest virtual address &+ addend
    static let invalid = TLBEntry(tag: .max, addend: 0)
}

/// A fetch TLB entry: guest virtual page -> decoded-instruction slots.
struct FetchTLBEntry {
    var tag: UInt64
    var ops: UnsafeMutablePointer<Op>
    var host: UnsafeMutableRawPointer
}

/// Which entries of one TLB were filled since it was last cleared. satp writes and sfence.vma
/// clear the TLBs, and between two of them a guest often fills only a handful of entries, so
/// clearing just those keeps a large TLB cheap to flush; past `capacity` fills the whole table
/// is swept.
struct TLBFillLog {
    static let capacity = 32
    private let slots = UnsafeMutablePointer<Int32>.allocate(capacity: TLBFillLog.capacity)
    private var count = 0

    func deallocate() { slots.deallocate() }

    @inline(__always)
    mutating func note(_ index: Int) {
        if count < Self.capacity { slots[count] = Int32(truncatingIfNeeded: index) }
        count &+= 1
    }

    /// Empties the log: the filled indices, or nil when there were too many to list.
    mutating func take() -> UnsafeBufferPointer<Int32>? {
        defer { count = 0 }
        return count <= Self.capacity ? UnsafeBufferPointer(start: slots, count: count) : nil
    }
}

/// The translation regimes that get TLBs of their own (QEMU's mmu_idx): an entry is only valid
/// for the privilege and mstatus bits it was filled under, so each regime keeps its own, and a
/// trap or xRET just switches to another set instead of flushing. Loads and stores use the
/// effective privilege (MPRV/MPP) and, in S-mode, SUM; fetches use the privilege alone.
enum TranslationRegime {
    static let user = 0, supervisor = 1, supervisorSUM = 2, machine = 3
    static let dataCount = 4
    /// Fetch sets: user, supervisor, machine.
    static let fetchCount = 3
}
/// Per-run scratch the interpreter and its slow paths share; not guest state.
struct HartScratch {
    /// Set by a slow path when the interpreter must return to the run loop
    /// (CSR write, MMIO access, xRET, WFI...) so interrupts are checked at once.
    var endSlice = false
    /// mip bits driven by devices: MSIP/MTIP (CLINT), MEIP/SEIP (PLIC).
    var mipLines: UInt64 = 0
    /// A `lookup` slot: pointing the interpreter here makes it look its pc up.
    var sentinel = Op.lookup
    /// Where an instruction that straddles two pages runs from (never
    /// cached): the op, then the sentinel for the pc after it (page + 0x1002).
    var straddler = (Op.undecoded, Op.pageEnd(at: 0x1002), Op.pageEnd(at: 0x1002))
    /// `State.retired` once the current slice has run its whole budget.
    var sliceEnd: UInt64 = 0
}

public final class Hart {
    /// 4096 pages = 16 MiB reach: a guest striding over a large working set stays on the fast
    /// path (+30% on mempattern's 16 MiB), and the fill logs keep flushes as cheap as with 256.
    static let tlbSize = 4096

    let sp: UnsafeMutablePointer<State>
    /// x0...x31, inside `sp.pointee.x`.
    let x: UnsafeMutablePointer<UInt64>
    let scratch: UnsafeMutablePointer<HartScratch>
    /// Data TLBs of every regime: per regime a read TLB [0, tlbSize) then a write TLB
    /// [tlbSize, 2 tlbSize), so one base register serves both in the interpreter.
    let dataTLBs: UnsafeMutablePointer<TLBEntry>
    /// Fetch TLBs of every regime, `tlbSize` entries each.
    let fetchTLBs: UnsafeMutablePointer<FetchTLBEntry>
    /// The current regime's data TLBs (`selectTranslationRegime` keeps it current).
    @exclusivity(unchecked) private(set) var tlb: UnsafeMutablePointer<TLBEntry>
    var tlbRead: UnsafeMutablePointer<TLBEntry> { tlb }
    var tlbWrite: UnsafeMutablePointer<TLBEntry> { tlb + Hart.tlbSize }
    /// The current privilege's fetch TLB.
    @exclusivity(unchecked) private(set) var tlbFetch: UnsafeMutablePointer<FetchTLBEntry>
    /// Fill logs: read and write of each data regime (2 r, 2 r + 1), then each fetch set.
    let fillLogs: UnsafeMutablePointer<TLBFillLog>
    static let fillLogCount = 2 * TranslationRegime.dataCount + TranslationRegime.fetchCount
    /// Fill logs of the current regime's read, write and fetch TLBs.
    @exclusivity(unchecked) private var readLog: UnsafeMutablePointer<TLBFillLog>
    @exclusivity(unchecked) private var writeLog: UnsafeMutablePointer<TLBFillLog>
    @exclusivity(unchecked) private var fetchLog: UnsafeMutablePointer<TLBFillLog>
    let ram: GuestRAM
    /// `scratch.pointee.sentinel` and `scratch.pointee.straddler`.
    let lookupSlot: UnsafeMutablePointer<Op>
    let straddlerSlots: UnsafeMutablePointer<Op>
    let bus: Bus
    public let hartID: UInt64 = 0
    /// Whether `run` hands the common integer ops to the threaded C core (CInterpreterCore).
    /// Off, the Swift loop runs every op: the reference the core is tested against.
    @exclusivity(unchecked) var usesThreadedCore = true
    /// Whether the threaded core runs compiled blocks at jump targets (`GuestRAM.jit`, x86-64
    /// Linux only). Off, it runs every op itself: what the JIT is tested against.
    @exclusivity(unchecked) var usesJIT = true

    init(ram: GuestRAM, bus: Bus) {
        self.ram = ram
        self.bus = bus
        sp = .allocate(capacity: 1)
        sp.initialize(to: State())
        let off = MemoryLayout<State>.offset(of: \State.x)!
        x = (UnsafeMutableRawPointer(sp) + off).assumingMemoryBound(to: UInt64.self)
        scratch = .allocate(capacity: 1)
        scratch.initialize(to: HartScratch())
        let dataEntries = 2 * Hart.tlbSize * TranslationRegime.dataCount
        dataTLBs = .allocate(capacity: dataEntries)
        dataTLBs.initialize(repeating: .invalid, count: dataEntries)
        fetchTLBs = .allocate(capacity: Hart.tlbSize * TranslationRegime.fetchCount)
        fillLogs = .allocate(capacity: Hart.fillLogCount)
        for log in 0..<Hart.fillLogCount { (fillLogs + log).initialize(to: TLBFillLog()) }
        let sentinelOffset = MemoryLayout<HartScratch>.offset(of: \HartScratch.sentinel)!
        let dummy = (UnsafeMutableRawPointer(scratch) + sentinelOffset).assumingMemoryBound(to: Op.self)
        lookupSlot = dummy
        let straddlerOffset = MemoryLayout<HartScratch>.offset(of: \HartScratch.straddler)!
        straddlerSlots = (UnsafeMutableRawPointer(scratch) + straddlerOffset).assumingMemoryBound(to: Op.self)
        fetchTLBs.initialize(
            repeating: FetchTLBEntry(tag: .max, ops: dummy, host: ram.bytes),
            count: Hart.tlbSize * TranslationRegime.fetchCount)
        tlb = dataTLBs
        tlbFetch = fetchTLBs
        readLog = fillLogs
        writeLog = fillLogs
        fetchLog = fillLogs
        selectTranslationRegime()
    }

    deinit {
        sp.deinitialize(count: 1); sp.deallocate()
        scratch.deinitialize(count: 1); scratch.deallocate()
        dataTLBs.deallocate(); fetchTLBs.deallocate()
        for log in 0..<Hart.fillLogCount { fillLogs[log].deallocate() }
        fillLogs.deinitialize(count: Hart.fillLogCount); fillLogs.deallocate()
    }

    /// The architectural state: copy out for a snapshot, assign to restore.
    public var state: State {
        get { sp.pointee }
        set {
            sp.pointee = newValue
            flushTLB()
            selectTranslationRegime()
        }
    }

    /// Reset (priv. spec §3.4): M-mode, MIE = MPRV = 0, pc = reset vector.
    public func reset(pc: UInt64) {
        sp.pointee = State()
        sp.pointee.pc = pc
        flushTLB()
        selectTranslationRegime()
    }

    @inline(__always) var priv: PrivilegeMode { sp.pointee.priv }

    /// Points `tlb` and `tlbFetch` at the sets of the current privilege and mstatus (after a
    /// trap, an xRET, an mstatus write, a restore). Nothing is flushed: each set only ever
    /// holds translations of its own regime.
    func selectTranslationRegime() {
        let s = sp.pointee
        let data: Int
        switch dataPrivilege() {
        case .machine: data = TranslationRegime.machine
        case .user: data = TranslationRegime.user
        case .supervisor: data = s.mstatus & Hart.mstatusSUM != 0 ? TranslationRegime.supervisorSUM : TranslationRegime.supervisor
        }
        let fetch: Int
        switch s.priv {
        case .user: fetch = 0
        case .supervisor: fetch = 1
        case .machine: fetch = 2
        }
        tlb = dataTLBs + 2 * Hart.tlbSize * data
        readLog = fillLogs + 2 * data
        writeLog = fillLogs + 2 * data + 1
        tlbFetch = fetchTLBs + Hart.tlbSize * fetch
        fetchLog = fillLogs + 2 * TranslationRegime.dataCount + fetch
    }

    /// Drops every translation of every regime: satp writes, sfence.vma, MXR changes, restore.
    func flushTLB() {
        for regime in 0..<TranslationRegime.dataCount {
            let base = dataTLBs + 2 * Hart.tlbSize * regime
            Hart.clear(base, log: fillLogs + 2 * regime)
            Hart.clear(base + Hart.tlbSize, log: fillLogs + 2 * regime + 1)
        }
        for set in 0..<TranslationRegime.fetchCount {
            let table = fetchTLBs + Hart.tlbSize * set
            let log = fillLogs + 2 * TranslationRegime.dataCount + set
            if let filled = log.pointee.take() {
                for i in filled { table[Int(i)].tag = .max }
            } else {
                for i in 0..<Hart.tlbSize { table[i].tag = .max }
            }
        }
    }

    private static func clear(_ table: UnsafeMutablePointer<TLBEntry>, log: UnsafeMutablePointer<TLBFillLog>) {
        if let filled = log.pointee.take() {
            for i in filled { table[Int(i)] = .invalid }
        } else {
            table.update(repeating: .invalid, count: Hart.tlbSize)
        }
    }

    /// Dirty logging and new code pages must see every later store, whatever the regime.
    func flushWriteTLB() {
        for regime in 0..<TranslationRegime.dataCount {
            Hart.clear(dataTLBs + 2 * Hart.tlbSize * regime + Hart.tlbSize, log: fillLogs + 2 * regime + 1)
        }
    }

    // Every TLB fill goes through one of these, so the fill logs see them all.
    @inline(__always) func fillRead(_ va: UInt64, _ entry: TLBEntry) {
        let index = Hart.tlbIndex(va)
        tlbRead[index] = entry
        readLog.pointee.note(index)
    }

    @inline(__always) func fillWrite(_ va: UInt64, _ entry: TLBEntry) {
        let index = Hart.tlbIndex(va)
        tlbWrite[index] = entry
        writeLog.pointee.note(index)
    }

    @inline(__always) func fillFetch(_ va: UInt64, _ entry: FetchTLBEntry) {
        let index = Hart.tlbIndex(va)
        tlbFetch[index] = entry
        fetchLog.pointee.note(index)
    }

    @inline(__always) static func tlbIndex(_ va: UInt64) -> Int {
        Int(truncatingIfNeeded: (va >> 12) & UInt64(tlbSize - 1))
    }
}
