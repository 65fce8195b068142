// One RV64IMAC hart. Its architectural state lives in one `State` value held
// at a stable address, so the interpreter reaches registers through plain
// pointers (no class-property exclusivity checks, no ARC in the loop), and a
// snapshot is `hart.state` (copy out) / `hart.state = s` (copy in).

/// A software TLB entry: guest virtual page -> host address of the RAM page.
/// `tag` is the page-aligned virtual address; `UInt64.max` marks it invalid
/// (its bits 3...11 are set, so no masked address can match it).
struct TLBEntry {
    var tag: UInt64
    var addend: UInt64   // host address = guest virtual address &+ addend
    static let invalid = TLBEntry(tag: .max, addend: 0)
}

/// A fetch TLB entry: guest virtual page -> decoded-instruction slots.
struct FetchTLBEntry {
    var tag: UInt64
    var ops: UnsafeMutablePointer<Op>
    var host: UnsafeMutableRawPointer
}

/// Which entries of one TLB were filled since it was last cleared. Every trap and xRET clears
/// the TLBs, and between two of them a guest fills a handful of entries, so clearing just those
/// keeps a large TLB cheap to flush; past `capacity` fills the whole table is swept.
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

/// Per-run scratch the interpreter and its slow paths share; not guest state.
struct HartScratch {
    /// Set by a slow path when the interpreter must return to the run loop
    /// (CSR write, MMIO access, xRET, WFI...) so interrupts are checked at once.
    var endSlice = false
    /// mip bits driven by devices: MSIP/MTIP (CLINT), MEIP/SEIP (PLIC).
    var mipLines: UInt64 = 0
    /// A `pageEnd` slot: pointing the interpreter here makes it look the pc up.
    var sentinel = Op.pageEnd
    /// Where an instruction that straddles two pages runs from (never
    /// cached): the op, then `pageEnd` slots.
    var straddler = (Op.undecoded, Op.pageEnd, Op.pageEnd)
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
    /// Read TLB entries [0, tlbSize), write TLB entries [tlbSize, 2 tlbSize):
    /// one base register serves both in the interpreter.
    let tlb: UnsafeMutablePointer<TLBEntry>
    var tlbRead: UnsafeMutablePointer<TLBEntry> { tlb }
    var tlbWrite: UnsafeMutablePointer<TLBEntry> { tlb + Hart.tlbSize }
    let tlbFetch: UnsafeMutablePointer<FetchTLBEntry>
    /// Fill logs of the read, write and fetch TLBs (indices below).
    let fillLogs: UnsafeMutablePointer<TLBFillLog>
    static let readLog = 0, writeLog = 1, fetchLog = 2
    let ram: GuestRAM
    /// `scratch.pointee.sentinel` and `scratch.pointee.straddler`.
    let lookupSlot: UnsafeMutablePointer<Op>
    let straddlerSlots: UnsafeMutablePointer<Op>
    let bus: Bus
    public let hartID: UInt64 = 0

    init(ram: GuestRAM, bus: Bus) {
        self.ram = ram
        self.bus = bus
        sp = .allocate(capacity: 1)
        sp.initialize(to: State())
        let off = MemoryLayout<State>.offset(of: \State.x)!
        x = (UnsafeMutableRawPointer(sp) + off).assumingMemoryBound(to: UInt64.self)
        scratch = .allocate(capacity: 1)
        scratch.initialize(to: HartScratch())
        tlb = .allocate(capacity: 2 * Hart.tlbSize)
        tlb.initialize(repeating: .invalid, count: 2 * Hart.tlbSize)
        tlbFetch = .allocate(capacity: Hart.tlbSize)
        fillLogs = .allocate(capacity: 3)
        for log in 0..<3 { (fillLogs + log).initialize(to: TLBFillLog()) }
        let sentinelOffset = MemoryLayout<HartScratch>.offset(of: \HartScratch.sentinel)!
        let dummy = (UnsafeMutableRawPointer(scratch) + sentinelOffset).assumingMemoryBound(to: Op.self)
        lookupSlot = dummy
        let straddlerOffset = MemoryLayout<HartScratch>.offset(of: \HartScratch.straddler)!
        straddlerSlots = (UnsafeMutableRawPointer(scratch) + straddlerOffset).assumingMemoryBound(to: Op.self)
        tlbFetch.initialize(repeating: FetchTLBEntry(tag: .max, ops: dummy, host: ram.bytes), count: Hart.tlbSize)
    }

    deinit {
        sp.deinitialize(count: 1); sp.deallocate()
        scratch.deinitialize(count: 1); scratch.deallocate()
        tlb.deallocate(); tlbFetch.deallocate()
        for log in 0..<3 { fillLogs[log].deallocate() }
        fillLogs.deinitialize(count: 3); fillLogs.deallocate()
    }

    /// The architectural state: copy out for a snapshot, assign to restore.
    public var state: State {
        get { sp.pointee }
        set {
            sp.pointee = newValue
            flushTLB()
        }
    }

    /// Reset (priv. spec §3.4): M-mode, MIE = MPRV = 0, pc = reset vector.
    public func reset(pc: UInt64) {
        sp.pointee = State()
        sp.pointee.pc = pc
        flushTLB()
    }

    @inline(__always) var priv: PrivilegeMode { sp.pointee.priv }

    /// Drops every translation: satp/mstatus/privilege changes, sfence.vma.
    func flushTLB() {
        clearReadTLB()
        flushWriteTLB()
        if let filled = fillLogs[Hart.fetchLog].take() {
            for i in filled { tlbFetch[Int(i)].tag = .max }
        } else {
            for i in 0..<Hart.tlbSize { tlbFetch[i].tag = .max }
        }
    }

    private func clearReadTLB() {
        if let filled = fillLogs[Hart.readLog].take() {
            for i in filled { tlbRead[Int(i)] = .invalid }
        } else {
            tlbRead.update(repeating: .invalid, count: Hart.tlbSize)
        }
    }

    /// Dirty logging and new code pages must see every later store.
    func flushWriteTLB() {
        if let filled = fillLogs[Hart.writeLog].take() {
            for i in filled { tlbWrite[Int(i)] = .invalid }
        } else {
            tlbWrite.update(repeating: .invalid, count: Hart.tlbSize)
        }
    }

    // Every TLB fill goes through one of these, so the fill logs see them all.
    @inline(__always) func fillRead(_ va: UInt64, _ entry: TLBEntry) {
        let index = Hart.tlbIndex(va)
        tlbRead[index] = entry
        fillLogs[Hart.readLog].note(index)
    }

    @inline(__always) func fillWrite(_ va: UInt64, _ entry: TLBEntry) {
        let index = Hart.tlbIndex(va)
        tlbWrite[index] = entry
        fillLogs[Hart.writeLog].note(index)
    }

    @inline(__always) func fillFetch(_ va: UInt64, _ entry: FetchTLBEntry) {
        let index = Hart.tlbIndex(va)
        tlbFetch[index] = entry
        fillLogs[Hart.fetchLog].note(index)
    }

    @inline(__always) static func tlbIndex(_ va: UInt64) -> Int {
        Int(truncatingIfNeeded: (va >> 12) & UInt64(tlbSize - 1))
    }
}
