// The interpreter loop: runs decoded instructions from per-page caches with
// the pc, the budget and every table pointer in locals. The common integer ops
// run in the threaded C core (CInterpreterCore), which hands back every op it
// does not run; this loop runs those, and is the reference for what the core
// does. Loads and stores hit the software TLB inline (one compare, one add);
// everything rarer is an @inline(never) slow path. Interrupts, timers and run
// control are checked by the caller between slices, never inside this loop.

import CInterpreterCore

@inline(__always) private func sext32(_ v: UInt64) -> UInt64 {
    UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: v)))
}
@inline(__always) private func sext32(_ v: UInt32) -> UInt64 {
    UInt64(bitPattern: Int64(Int32(bitPattern: v)))
}
@inline(__always) private func hostPointer<T>(_ address: UInt64, _: T.Type) -> UnsafeMutablePointer<T> {
    UnsafeMutablePointer<T>(bitPattern: UInt(truncatingIfNeeded: address)).unsafelyUnwrapped
}

extension Hart {
    /// Runs at most `budget` steps — instructions retired, plus traps taken by ecall, ebreak
    /// and illegal instructions — and returns how many it ran. Stops early after other traps
    /// or when a slow path sets `scratch.endSlice`.
    @inline(never)
    public func run(budget: Int) -> Int {
        // Few locals on purpose: x86-64 has 15 registers and the loop-carried
        // ones (slot, remaining) must not be spilled. Slow paths reload what
        // they need from `self`. The pc is not carried: an op knows its offset
        // in `page`, and `pc` only holds a jump target for the `lookup` sentinel.
        let s = sp
        let x = self.x
        let scratch = self.scratch
        // The current regime's TLBs: reloaded after a trap or xRET that does not end the slice.
        var tlb = self.tlb
        var tlbF = tlbFetch
        let base = s.pointee.retired
        let lookup = lookupSlot
        var pc = s.pointee.pc
        // `slot` is the decoded instruction to run; sequential execution just
        // advances it (a page's last slot is followed by `pageEnd`), jumps
        // within `page` go to their target slot, anything else goes via the
        // `lookupSlot` sentinel with the target in `pc`.
        var slot = lookup
        var page: UInt64 = .max
        var pageOps = lookup
        var pageHost = ram.bytes
        var remaining = budget
        scratch.pointee.endSlice = false
        scratch.pointee.sliceEnd = base &+ UInt64(budget)

        let threaded = usesThreadedCore
        var core = emu_hart_loop(
            x: x, slot: UnsafeMutableRawPointer(lookup), page: page, page_ops: UnsafeMutableRawPointer(lookup),
            page_host: pageHost, pc: pc, remaining: remaining, tlb: UnsafeRawPointer(tlb), tlb_fetch: UnsafeRawPointer(tlbF),
            lookup: UnsafeMutableRawPointer(lookup), jit: threaded && usesJIT ? ram.jit : nil)

        execution: while true {
            if threaded && remaining > 0 {
                // The threaded core runs on until an op it leaves to this loop (not yet run), a
                // TLB miss or the budget's end; the switch below then runs that one op.
                core.slot = UnsafeMutableRawPointer(slot)
                core.page = page
                core.page_ops = UnsafeMutableRawPointer(pageOps)
                core.page_host = pageHost
                core.pc = pc
                core.remaining = remaining
                core.tlb = UnsafeRawPointer(tlb)
                core.tlb_fetch = UnsafeRawPointer(tlbF)
                emu_hart_run_threaded(&core)
                slot = core.slot.assumingMemoryBound(to: Op.self)
                page = core.page
                pageOps = core.page_ops.assumingMemoryBound(to: Op.self)
                pageHost = core.page_host
                pc = core.pc
                remaining = core.remaining
            }
            guard remaining > 0 else {
                // Out of budget: the pc of the slot we stopped at (every slot but `lookup` knows it).
                if slot.pointee.kind != .lookup { pc = page &+ UInt64(slot.pointee.offset) }
                break
            }
            // Fields are read where a case uses them, not copied up front: eight live
            // values at the dispatch would push `slot` out of its register.
            let op = OpRef(slot)

            switch op.kind {
            case .addi: x[op.d] = x[op.s1] &+ op.i
            case .li: x[op.d] = op.i
            case .mv: x[op.d] = x[op.s1]
            case .add: x[op.d] = x[op.s1] &+ x[op.s2]
            case .lui: x[op.d] = op.i
            case .auipc: x[op.d] = page &+ UInt64(op.offset) &+ op.i
            // Jumps and taken branches: the same page keeps running from its
            // slots; another page is looked up in the fetch TLB. (Written out in
            // every case: a local closure would capture pc, slot and remaining and
            // keep them in memory instead of registers.)
            case .jal:
                x[op.d] = page &+ UInt64(op.offset) &+ UInt64(op.len)
                slot = Hart.taken(op, page: page, ops: pageOps, lookup: lookup, pc: &pc)
                remaining &-= 1
                continue execution
            case .j:
                slot = Hart.taken(op, page: page, ops: pageOps, lookup: lookup, pc: &pc)
                remaining &-= 1
                continue execution
            case .jalr:
                let target = (x[op.s1] &+ op.i) & ~1
                x[op.d] = page &+ UInt64(op.offset) &+ UInt64(op.len)
                pc = target
                slot = Hart.slot(for: pc, page: page, ops: pageOps, lookup: lookup)
                remaining &-= 1
                continue execution
            case .jr:
                pc = (x[op.s1] &+ op.i) & ~1
                slot = Hart.slot(for: pc, page: page, ops: pageOps, lookup: lookup)
                remaining &-= 1
                continue execution
            case .beq:
                if x[op.s1] == x[op.s2] {
                    slot = Hart.taken(op, page: page, ops: pageOps, lookup: lookup, pc: &pc)
                    remaining &-= 1
                    continue execution
                }
            case .bne:
                if x[op.s1] != x[op.s2] {
                    slot = Hart.taken(op, page: page, ops: pageOps, lookup: lookup, pc: &pc)
                    remaining &-= 1
                    continue execution
                }
            case .blt:
                if Int64(bitPattern: x[op.s1]) < Int64(bitPattern: x[op.s2]) {
                    slot = Hart.taken(op, page: page, ops: pageOps, lookup: lookup, pc: &pc)
                    remaining &-= 1
                    continue execution
                }
            case .bge:
                if Int64(bitPattern: x[op.s1]) >= Int64(bitPattern: x[op.s2]) {
                    slot = Hart.taken(op, page: page, ops: pageOps, lookup: lookup, pc: &pc)
                    remaining &-= 1
                    continue execution
                }
            case .bltu:
                if x[op.s1] < x[op.s2] {
                    slot = Hart.taken(op, page: page, ops: pageOps, lookup: lookup, pc: &pc)
                    remaining &-= 1
                    continue execution
                }
            case .bgeu:
                if x[op.s1] >= x[op.s2] {
                    slot = Hart.taken(op, page: page, ops: pageOps, lookup: lookup, pc: &pc)
                    remaining &-= 1
                    continue execution
                }

            case .pageEnd, .lookup:
                // Not an instruction: find the slots for pc's page.
                if op.kind == .pageEnd { pc = page &+ UInt64(op.offset) }
                let e = tlbF[Hart.tlbIndex(pc)]
                if e.tag == pc & ~0xfff {
                    page = e.tag; pageOps = e.ops; pageHost = e.host
                } else {
                    sync(pc, remaining)
                    guard let found = fetchPage(pc) else { pc = sp.pointee.pc; break execution }
                    page = found.tag; pageOps = found.ops; pageHost = found.host
                }
                slot = pageOps + Int(truncatingIfNeeded: (pc & 0xfff) >> 1)
                continue execution
            case .undecoded:
                pc = page &+ UInt64(op.offset)
                sp.pointee.pc = pc
                let entry = FetchTLBEntry(tag: page, ops: pageOps, host: pageHost)
                guard let decoded = decodeSlot(pc, entry) else { pc = sp.pointee.pc; break execution }
                if slot.pointee.kind == .undecoded {
                    // Straddles two pages: run it from the side slots.
                    straddlerSlots.pointee = decoded
                    slot = straddlerSlots
                }
                continue execution

            // Loads: the TLB tag keeps the low address bits, so a misaligned
            // address misses and takes the slow path.
            case .ld:
                let a = x[op.s1] &+ op.i
                let e = tlb[Hart.tlbIndex(a)]
                if e.tag == a & ~0xff8 {
                    x[op.d] = hostPointer(a &+ e.addend, UInt64.self).pointee
                } else {
                    sync(page &+ UInt64(op.offset), remaining)
                    guard let v = loadSlow(a, size: 8) else { pc = sp.pointee.pc; break execution }
                    x[op.d] = v
                }
            case .lw:
                let a = x[op.s1] &+ op.i
                let e = tlb[Hart.tlbIndex(a)]
                if e.tag == a & ~0xffc {
                    x[op.d] = sext32(hostPointer(a &+ e.addend, UInt32.self).pointee)
                } else {
                    sync(page &+ UInt64(op.offset), remaining)
                    guard let v = loadSlow(a, size: 4) else { pc = sp.pointee.pc; break execution }
                    x[op.d] = sext32(v)
                }
            case .lwu:
                let a = x[op.s1] &+ op.i
                let e = tlb[Hart.tlbIndex(a)]
                if e.tag == a & ~0xffc {
                    x[op.d] = UInt64(hostPointer(a &+ e.addend, UInt32.self).pointee)
                } else {
                    sync(page &+ UInt64(op.offset), remaining)
                    guard let v = loadSlow(a, size: 4) else { pc = sp.pointee.pc; break execution }
                    x[op.d] = v
                }
            case .lh:
                let a = x[op.s1] &+ op.i
                let e = tlb[Hart.tlbIndex(a)]
                if e.tag == a & ~0xffe {
                    x[op.d] = UInt64(bitPattern: Int64(hostPointer(a &+ e.addend, Int16.self).pointee))
                } else {
                    sync(page &+ UInt64(op.offset), remaining)
                    guard let v = loadSlow(a, size: 2) else { pc = sp.pointee.pc; break execution }
                    x[op.d] = UInt64(bitPattern: Int64(Int16(truncatingIfNeeded: v)))
                }
            case .lhu:
                let a = x[op.s1] &+ op.i
                let e = tlb[Hart.tlbIndex(a)]
                if e.tag == a & ~0xffe {
                    x[op.d] = UInt64(hostPointer(a &+ e.addend, UInt16.self).pointee)
                } else {
                    sync(page &+ UInt64(op.offset), remaining)
                    guard let v = loadSlow(a, size: 2) else { pc = sp.pointee.pc; break execution }
                    x[op.d] = v
                }
            case .lb:
                let a = x[op.s1] &+ op.i
                let e = tlb[Hart.tlbIndex(a)]
                if e.tag == a & ~0xfff {
                    x[op.d] = UInt64(bitPattern: Int64(hostPointer(a &+ e.addend, Int8.self).pointee))
                } else {
                    sync(page &+ UInt64(op.offset), remaining)
                    guard let v = loadSlow(a, size: 1) else { pc = sp.pointee.pc; break execution }
                    x[op.d] = UInt64(bitPattern: Int64(Int8(truncatingIfNeeded: v)))
                }
            case .lbu:
                let a = x[op.s1] &+ op.i
                let e = tlb[Hart.tlbIndex(a)]
                if e.tag == a & ~0xfff {
                    x[op.d] = UInt64(hostPointer(a &+ e.addend, UInt8.self).pointee)
                } else {
                    sync(page &+ UInt64(op.offset), remaining)
                    guard let v = loadSlow(a, size: 1) else { pc = sp.pointee.pc; break execution }
                    x[op.d] = v
                }
            case .loadDiscard:
                // Read before the slow path: a store may overwrite this very instruction.
                let here = page &+ UInt64(op.offset)
                let next = here &+ UInt64(op.len)
                sync(here, remaining)
                guard loadSlow(x[op.s1] &+ op.i, size: 1 << (op.s2 & 3)) != nil else { pc = sp.pointee.pc; break execution }
                if scratch.pointee.endSlice { pc = next; remaining &-= 1; break execution }

            case .sd:
                let a = x[op.s1] &+ op.i
                let e = tlb[Hart.tlbSize &+ Hart.tlbIndex(a)]
                if e.tag == a & ~0xff8 {
                    hostPointer(a &+ e.addend, UInt64.self).pointee = x[op.s2]
                } else {
                    // Read before the slow path: a store may overwrite this very instruction.
                    let here = page &+ UInt64(op.offset)
                    let next = here &+ UInt64(op.len)
                    sync(here, remaining)
                    guard storeSlow(a, size: 8, value: x[op.s2]) else { pc = sp.pointee.pc; break execution }
                    if scratch.pointee.endSlice { pc = next; remaining &-= 1; break execution }
                }
            case .sw:
                let a = x[op.s1] &+ op.i
                let e = tlb[Hart.tlbSize &+ Hart.tlbIndex(a)]
                if e.tag == a & ~0xffc {
                    hostPointer(a &+ e.addend, UInt32.self).pointee = UInt32(truncatingIfNeeded: x[op.s2])
                } else {
                    // Read before the slow path: a store may overwrite this very instruction.
                    let here = page &+ UInt64(op.offset)
                    let next = here &+ UInt64(op.len)
                    sync(here, remaining)
                    guard storeSlow(a, size: 4, value: x[op.s2]) else { pc = sp.pointee.pc; break execution }
                    if scratch.pointee.endSlice { pc = next; remaining &-= 1; break execution }
                }
            case .sh:
                let a = x[op.s1] &+ op.i
                let e = tlb[Hart.tlbSize &+ Hart.tlbIndex(a)]
                if e.tag == a & ~0xffe {
                    hostPointer(a &+ e.addend, UInt16.self).pointee = UInt16(truncatingIfNeeded: x[op.s2])
                } else {
                    // Read before the slow path: a store may overwrite this very instruction.
                    let here = page &+ UInt64(op.offset)
                    let next = here &+ UInt64(op.len)
                    sync(here, remaining)
                    guard storeSlow(a, size: 2, value: x[op.s2]) else { pc = sp.pointee.pc; break execution }
                    if scratch.pointee.endSlice { pc = next; remaining &-= 1; break execution }
                }
            case .sb:
                let a = x[op.s1] &+ op.i
                let e = tlb[Hart.tlbSize &+ Hart.tlbIndex(a)]
                if e.tag == a & ~0xfff {
                    hostPointer(a &+ e.addend, UInt8.self).pointee = UInt8(truncatingIfNeeded: x[op.s2])
                } else {
                    // Read before the slow path: a store may overwrite this very instruction.
                    let here = page &+ UInt64(op.offset)
                    let next = here &+ UInt64(op.len)
                    sync(here, remaining)
                    guard storeSlow(a, size: 1, value: x[op.s2]) else { pc = sp.pointee.pc; break execution }
                    if scratch.pointee.endSlice { pc = next; remaining &-= 1; break execution }
                }

            case .slti: x[op.d] = Int64(bitPattern: x[op.s1]) < Int64(bitPattern: op.i) ? 1 : 0
            case .sltiu: x[op.d] = x[op.s1] < op.i ? 1 : 0
            case .xori: x[op.d] = x[op.s1] ^ op.i
            case .ori: x[op.d] = x[op.s1] | op.i
            case .andi: x[op.d] = x[op.s1] & op.i
            case .slli: x[op.d] = x[op.s1] << (op.i & 63)
            case .srli: x[op.d] = x[op.s1] >> (op.i & 63)
            case .srai: x[op.d] = UInt64(bitPattern: Int64(bitPattern: x[op.s1]) >> (op.i & 63))
            case .sub: x[op.d] = x[op.s1] &- x[op.s2]
            case .sll: x[op.d] = x[op.s1] << (x[op.s2] & 63)
            case .slt: x[op.d] = Int64(bitPattern: x[op.s1]) < Int64(bitPattern: x[op.s2]) ? 1 : 0
            case .sltu: x[op.d] = x[op.s1] < x[op.s2] ? 1 : 0
            case .xor: x[op.d] = x[op.s1] ^ x[op.s2]
            case .srl: x[op.d] = x[op.s1] >> (x[op.s2] & 63)
            case .sra: x[op.d] = UInt64(bitPattern: Int64(bitPattern: x[op.s1]) >> (x[op.s2] & 63))
            case .or: x[op.d] = x[op.s1] | x[op.s2]
            case .and: x[op.d] = x[op.s1] & x[op.s2]
            case .addiw: x[op.d] = sext32(x[op.s1] &+ op.i)
            case .slliw: x[op.d] = sext32(UInt32(truncatingIfNeeded: x[op.s1]) << UInt32(op.i & 31))
            case .srliw: x[op.d] = sext32(UInt32(truncatingIfNeeded: x[op.s1]) >> UInt32(op.i & 31))
            case .sraiw:
                x[op.d] = UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: x[op.s1]) >> Int32(op.i & 31)))
            case .addw: x[op.d] = sext32(x[op.s1] &+ x[op.s2])
            case .subw: x[op.d] = sext32(x[op.s1] &- x[op.s2])
            case .sllw: x[op.d] = sext32(UInt32(truncatingIfNeeded: x[op.s1]) << UInt32(x[op.s2] & 31))
            case .srlw: x[op.d] = sext32(UInt32(truncatingIfNeeded: x[op.s1]) >> UInt32(x[op.s2] & 31))
            case .sraw:
                x[op.d] = UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: x[op.s1]) >> Int32(x[op.s2] & 31)))

            // M (unprivileged spec ch. 7): division by zero and overflow
            // have defined results, never traps (table 7.1).
            case .mul: x[op.d] = x[op.s1] &* x[op.s2]
            case .mulh:
                x[op.d] = UInt64(bitPattern: Int64(bitPattern: x[op.s1]).multipliedFullWidth(by: Int64(bitPattern: x[op.s2])).high)
            case .mulhu: x[op.d] = x[op.s1].multipliedFullWidth(by: x[op.s2]).high
            case .mulhsu:
                let a = x[op.s1]
                let b = x[op.s2]
                var high = a.multipliedFullWidth(by: b).high
                if Int64(bitPattern: a) < 0 { high = high &- b }
                x[op.d] = high
            case .div:
                let a = Int64(bitPattern: x[op.s1])
                let b = Int64(bitPattern: x[op.s2])
                if b == 0 {
                    x[op.d] = .max
                } else if a == .min && b == -1 {
                    x[op.d] = UInt64(bitPattern: a)
                } else {
                    x[op.d] = UInt64(bitPattern: a / b)
                }
            case .divu:
                let b = x[op.s2]
                x[op.d] = b == 0 ? .max : x[op.s1] / b
            case .rem:
                let a = Int64(bitPattern: x[op.s1])
                let b = Int64(bitPattern: x[op.s2])
                if b == 0 {
                    x[op.d] = UInt64(bitPattern: a)
                } else if a == .min && b == -1 {
                    x[op.d] = 0
                } else {
                    x[op.d] = UInt64(bitPattern: a % b)
                }
            case .remu:
                let b = x[op.s2]
                x[op.d] = b == 0 ? x[op.s1] : x[op.s1] % b
            case .mulw: x[op.d] = sext32(x[op.s1] &* x[op.s2])
            case .divw:
                let a = Int32(truncatingIfNeeded: x[op.s1])
                let b = Int32(truncatingIfNeeded: x[op.s2])
                if b == 0 {
                    x[op.d] = .max
                } else if a == .min && b == -1 {
                    x[op.d] = sext32(UInt32(bitPattern: a))
                } else {
                    x[op.d] = UInt64(bitPattern: Int64(a / b))
                }
            case .divuw:
                let a = UInt32(truncatingIfNeeded: x[op.s1])
                let b = UInt32(truncatingIfNeeded: x[op.s2])
                x[op.d] = b == 0 ? .max : sext32(a / b)
            case .remw:
                let a = Int32(truncatingIfNeeded: x[op.s1])
                let b = Int32(truncatingIfNeeded: x[op.s2])
                if b == 0 {
                    x[op.d] = sext32(UInt32(bitPattern: a))
                } else if a == .min && b == -1 {
                    x[op.d] = 0
                } else {
                    x[op.d] = UInt64(bitPattern: Int64(a % b))
                }
            case .remuw:
                let a = UInt32(truncatingIfNeeded: x[op.s1])
                let b = UInt32(truncatingIfNeeded: x[op.s2])
                x[op.d] = b == 0 ? sext32(a) : sext32(a % b)

            case .nop, .fence: break
            case .fenceI:
                // Stores already drop the decoded slots they overwrite.
                break

            case .amo:
                let here = page &+ UInt64(op.offset)
                let next = here &+ UInt64(op.len)
                sync(here, remaining)
                guard executeAMO(op.value) else { pc = sp.pointee.pc; break execution }
                if scratch.pointee.endSlice { pc = next; remaining &-= 1; break execution }
            case .csrrw, .csrrs, .csrrc, .csrrwi, .csrrsi, .csrrci:
                // Read before the slow path: a store may overwrite this very instruction.
                let here = page &+ UInt64(op.offset)
                let next = here &+ UInt64(op.len)
                sync(here, remaining)
                guard executeCSR(op.value) else { pc = sp.pointee.pc; break execution }
                if scratch.pointee.endSlice { pc = next; remaining &-= 1; break execution }
            case .ecall, .ebreak, .mret, .sret, .wfi, .sfenceVMA, .illegal:
                sync(page &+ UInt64(op.offset), remaining)
                if executeSystem(op.value, next: page &+ UInt64(op.offset) &+ UInt64(op.len)) {
                    remaining &-= 1
                } else {
                    // A trap retires nothing but still uses a step of the budget (with the
                    // slice's end moved so `retired` stays exact): a guest whose handler traps
                    // again cannot keep the loop from returning, and one step is one trap.
                    remaining &-= 1
                    scratch.pointee.sliceEnd &-= 1
                }
                pc = sp.pointee.pc
                if scratch.pointee.endSlice { break execution }
                // Traps and xRETs with no interrupt to take stay in the slice (an OS traps
                // all the time): on at the new pc, in the regime now in force, looked up anew
                // (sfence.vma may have changed the current page's translation too).
                tlb = self.tlb; tlbF = tlbFetch
                slot = lookup
                continue execution
            }
            // A branch on the length, not arithmetic on it: the next slot's address then does
            // not wait for this op's load (the predictor supplies it), which was the loop's
            // longest dependency chain.
            if _fastPath(op.len == 4) { slot += 2 } else { slot += 1 }
            remaining &-= 1
        }
        sync(pc, remaining)
        return budget &- remaining
    }

    /// The decoded slot of a jump target: in the current page directly, elsewhere the
    /// sentinel that makes the loop look the page up.
    @inline(__always)
    static func slot(
        for target: UInt64, page: UInt64, ops: UnsafeMutablePointer<Op>,
        lookup: UnsafeMutablePointer<Op>
    ) -> UnsafeMutablePointer<Op> {
        target & ~0xfff == page ? ops + Int(truncatingIfNeeded: (target & 0xfff) >> 1) : lookup
    }

    /// A taken jal, j or branch: its target slot when it is in the same page, else the lookup
    /// sentinel with the target in `pc`.
    @inline(__always)
    static func taken(
        _ op: OpRef, page: UInt64, ops: UnsafeMutablePointer<Op>, lookup: UnsafeMutablePointer<Op>,
        pc: inout UInt64
    ) -> UnsafeMutablePointer<Op> {
        if op.target >= 0 { return ops + Int(truncatingIfNeeded: op.target) }
        pc = page &+ UInt64(op.offset) &+ op.i
        return lookup
    }

    /// Makes `State.pc`/`retired` exact before a slow path looks at them.
    @inline(__always)
    func sync(_ pc: UInt64, _ remaining: Int) {
        sp.pointee.pc = pc
        sp.pointee.retired = scratch.pointee.sliceEnd &- UInt64(remaining)
    }

    /// System instructions and illegal encodings (priv. spec §3.3). Sets
    /// `sp.pointee.pc` to where execution continues; true if the
    /// instruction retired (ecall/ebreak and traps do not).
    @inline(never)
    func executeSystem(_ op: Op, next: UInt64) -> Bool {
        let s = sp
        let priv = s.pointee.priv
        let mstatus = s.pointee.mstatus
        switch op.kind {
        case .ecall:
            let cause: Exception = priv == .machine ? .ecallFromM : (priv == .supervisor ? .ecallFromS : .ecallFromU)
            raiseException(cause, tval: 0)
            return false
        case .ebreak:
            raiseException(.breakpoint, tval: s.pointee.pc)
            return false
        case .mret:
            guard priv == .machine else { break }
            mret()
            return true
        case .sret:
            // TSR makes sret trap in S-mode (§3.1.6.5).
            guard priv == .machine || (priv == .supervisor && mstatus & Hart.mstatusTSR == 0) else { break }
            sret()
            return true
        case .wfi:
            // U-mode never, S-mode not with TW (§3.1.6.5).
            guard priv == .machine || (priv == .supervisor && mstatus & Hart.mstatusTW == 0) else { break }
            s.pointee.pc = next
            if mipValue & s.pointee.mie == 0 { s.pointee.waitingForInterrupt = true }
            scratch.pointee.endSlice = true
            return true
        case .sfenceVMA:
            guard priv == .machine || (priv == .supervisor && mstatus & Hart.mstatusTVM == 0) else { break }
            flushTLB()
            s.pointee.pc = next
            return true
        default:
            break
        }
        let bits: UInt64
        switch op.kind {
        case .illegal: bits = UInt64(UInt32(bitPattern: op.imm))
        case .mret: bits = 0x3020_0073
        case .sret: bits = 0x1020_0073
        case .wfi: bits = 0x1050_0073
        case .sfenceVMA: bits = 0x1200_0073 | UInt64(op.rs1) << 15 | UInt64(op.rs2) << 20
        default: bits = 0
        }
        raiseException(.illegalInstruction, tval: op.len == 2 ? bits & 0xffff : bits)
        return false
    }
}
