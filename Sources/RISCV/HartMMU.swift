// Address translation (priv. spec §4.3 "Sv32" algorithm §4.3.2, applied to
// §4.4 "Sv39") and the slow paths of loads, stores and instruction fetch:
// TLB misses, MMIO, misaligned accesses, stores to code pages.

import CInterpreterCore

enum AccessType {
    case read, write, fetch

    var pageFault: Exception {
        switch self {
        case .read: return .loadPageFault
        case .write: return .storePageFault
        case .fetch: return .instructionPageFault
        }
    }
    var accessFault: Exception {
        switch self {
        case .read: return .loadAccessFault
        case .write: return .storeAccessFault
        case .fetch: return .instructionAccessFault
        }
    }
}

// PTE bits (§4.3.1)
private let pteV: UInt64 = 1 << 0
private let pteR: UInt64 = 1 << 1
private let pteW: UInt64 = 1 << 2
private let pteX: UInt64 = 1 << 3
private let pteU: UInt64 = 1 << 4
private let pteA: UInt64 = 1 << 6
private let pteD: UInt64 = 1 << 7
private let ppnMask: UInt64 = (1 << 44) - 1

extension Hart {
    /// Privilege used for loads and stores: MPRV makes M-mode accesses use
    /// MPP's privilege (§3.1.6.3).
    @inline(__always)
    func dataPrivilege() -> PrivilegeMode {
        let s = sp.pointee
        if s.priv == .machine && s.mstatus & Hart.mstatusMPRV != 0 {
            return PrivilegeMode(rawValue: UInt8((s.mstatus & Hart.mstatusMPP) >> Hart.mstatusMPPShift)) ?? .user
        }
        return s.priv
    }

    /// Virtual to physical, with A/D updated in the PTE as QEMU does.
    /// Returns the exception to raise on failure.
    func translate(_ va: UInt64, _ access: AccessType) -> (pa: UInt64, fault: Exception?) {
        let s = sp.pointee
        let priv = access == .fetch ? s.priv : dataPrivilege()
        if priv == .machine || s.satp >> 60 != 8 { return (va, nil) }
        // Sv39: bits 63...39 must all equal bit 38 (§4.4.1).
        if (Int64(bitPattern: va) << 25) >> 25 != Int64(bitPattern: va) { return (0, access.pageFault) }
        var table = (s.satp & ppnMask) << 12
        var level = 2
        while true {
            let vpn = (va >> UInt64(12 + 9 * level)) & 0x1ff
            let pteAddress = table &+ vpn &* 8
            guard ram.contains(pteAddress, count: 8) else { return (0, access.accessFault) }
            let host = ram.host(pteAddress)
            var pte = host.load(as: UInt64.self)
            if pte & pteV == 0 || (pte & pteR == 0 && pte & pteW != 0) || pte >> 54 != 0 {
                return (0, access.pageFault)
            }
            let ppn = (pte >> 10) & ppnMask
            if pte & (pteR | pteX) == 0 {
                if level == 0 { return (0, access.pageFault) }
                level -= 1
                table = ppn << 12
                continue
            }
            // Leaf: permissions (§4.3.1, §4.3.2 step 5).
            let user = pte & pteU != 0
            switch priv {
            case .user: if !user { return (0, access.pageFault) }
            case .supervisor:
                if user && (access == .fetch || s.mstatus & Hart.mstatusSUM == 0) { return (0, access.pageFault) }
            case .machine: break
            }
            switch access {
            case .fetch: if pte & pteX == 0 { return (0, access.pageFault) }
            case .read:
                let mxr = s.mstatus & Hart.mstatusMXR != 0
                if pte & pteR == 0 && !(mxr && pte & pteX != 0) { return (0, access.pageFault) }
            case .write: if pte & pteW == 0 { return (0, access.pageFault) }
            }
            // Misaligned superpage (§4.3.2 step 6).
            let lowBits = UInt64(9 * level)
            if level > 0 && ppn & ((1 << lowBits) - 1) != 0 { return (0, access.pageFault) }
            // A/D (§4.3.2 step 7): updated by the hart, like QEMU.
            let needed = pteA | (access == .write ? pteD : 0)
            if pte & needed != needed {
                pte |= needed
                host.storeBytes(of: pte, as: UInt64.self)
                if ram.dirtyLogging { ram.markDirty(pageIndex: ram.pageIndex(physical: pteAddress)) }
            }
            let offsetMask: UInt64 = (1 << (12 + lowBits)) - 1
            return (((ppn << 12) & ~offsetMask) | (va & offsetMask), nil)
        }
    }

    // MARK: Loads

    /// Slow load: TLB miss, MMIO or misaligned. Returns nil after raising
    /// the exception (sp.pointee.pc must hold the faulting instruction).
    @inline(never)
    func loadSlow(_ va: UInt64, size: Int) -> UInt64? {
        let page = va & ~0xfff
        if (va & 0xfff) + UInt64(size) > 0x1000 {
            // Misaligned across a page: assemble from bytes after checking both pages.
            var value: UInt64 = 0
            for i in 0..<size {
                guard let b = loadSlow(va &+ UInt64(i), size: 1) else { return nil }
                value |= b << UInt64(8 * i)
            }
            return value
        }
        let (pa, fault) = translate(va, .read)
        if let fault { raiseException(fault, tval: va); return nil }
        if ram.contains(pa, count: size) {
            let hostPage = ram.host(pa & ~0xfff)
            fillRead(va, TLBEntry(tag: page, addend: UInt64(UInt(bitPattern: hostPage)) &- page))
            let p = ram.host(pa)
            switch size {
            case 1: return UInt64(p.load(as: UInt8.self))
            case 2: return UInt64(p.loadUnaligned(as: UInt16.self))
            case 4: return UInt64(p.loadUnaligned(as: UInt32.self))
            default: return p.loadUnaligned(as: UInt64.self)
            }
        }
        scratch.pointee.endSlice = true
        guard let v = bus.read(pa, size: size) else {
            raiseException(.loadAccessFault, tval: va)
            return nil
        }
        return v
    }

    // MARK: Stores

    /// Slow store. Returns false after raising the exception.
    @inline(never)
    func storeSlow(_ va: UInt64, size: Int, value: UInt64) -> Bool {
        if (va & 0xfff) + UInt64(size) > 0x1000 {
            // Probe both pages first so a fault leaves memory untouched.
            let last = va &+ UInt64(size - 1)
            let (_, f1) = translate(va, .write)
            if let f1 { raiseException(f1, tval: va); return false }
            let (_, f2) = translate(last, .write)
            if let f2 { raiseException(f2, tval: last); return false }
            for i in 0..<size where !storeSlow(va &+ UInt64(i), size: 1, value: value >> UInt64(8 * i)) {
                return false
            }
            return true
        }
        let (pa, fault) = translate(va, .write)
        if let fault { raiseException(fault, tval: va); return false }
        if ram.contains(pa, count: size) {
            storeRAM(pa, size: size, value: value)
            let index = ram.pageIndex(physical: pa)
            if ram.codePages[index] == nil {
                let page = va & ~0xfff
                let hostPage = ram.host(pa & ~0xfff)
                fillWrite(va, TLBEntry(tag: page, addend: UInt64(UInt(bitPattern: hostPage)) &- page))
            }
            return true
        }
        scratch.pointee.endSlice = true
        guard bus.write(pa, size: size, value: value) else {
            raiseException(.storeAccessFault, tval: va)
            return false
        }
        return true
    }

    /// A store to guest RAM outside the write TLB: logs the page as dirty and
    /// drops decoded instructions it overwrites (self-modifying code).
    func storeRAM(_ pa: UInt64, size: Int, value: UInt64) {
        let p = ram.host(pa)
        switch size {
        case 1: p.storeBytes(of: UInt8(truncatingIfNeeded: value), as: UInt8.self)
        case 2: p.storeBytes(of: UInt16(truncatingIfNeeded: value), as: UInt16.self)
        case 4: p.storeBytes(of: UInt32(truncatingIfNeeded: value), as: UInt32.self)
        default: p.storeBytes(of: value, as: UInt64.self)
        }
        let index = ram.pageIndex(physical: pa)
        if ram.dirtyLogging { ram.markDirty(pageIndex: index) }
        if let ops = ram.codePages[index] {
            // A 32-bit instruction starting 2 bytes before the store overlaps it.
            let offset = Int(pa & 0xfff)
            let first = max(0, (offset - 2) >> 1)
            let last = min(GuestRAM.opsPerPage - 1, (offset + size - 1) >> 1)
            for slot in first...last where ops[slot].kind != .undecoded {
                ops[slot] = .undecoded(at: slot << 1)
                // The interpreter may be running this very code: it must not read on.
                scratch.pointee.endSlice = true
            }
            // Blocks compiled from the dropped slots go with them (the whole page's: cheap,
            // and a block may start before the store and run through it).
            if scratch.pointee.endSlice { emu_jit_drop_blocks(ops) }
        }
    }

    // MARK: Instruction fetch

    /// Finds (creating if needed) the decoded-instruction page for `pc` and
    /// caches it in the fetch TLB. Returns nil after raising the exception.
    @inline(never)
    func fetchPage(_ pc: UInt64) -> FetchTLBEntry? {
        let (pa, fault) = translate(pc, .fetch)
        if let fault { raiseException(fault, tval: pc); return nil }
        guard ram.contains(pa) else {
            raiseException(.instructionAccessFault, tval: pc)
            return nil
        }
        let index = ram.pageIndex(physical: pa)
        let ops: UnsafeMutablePointer<Op>
        if let existing = ram.codePages[index] {
            ops = existing
        } else {
            // One slot per halfword plus the sentinel that ends the page.
            ops = .allocate(capacity: GuestRAM.codePageCapacity)
            for slot in 0..<GuestRAM.opsPerPage { (ops + slot).initialize(to: .undecoded(at: slot << 1)) }
            (ops + GuestRAM.opsPerPage).initialize(to: .pageEnd(at: GuestRAM.pageSize))
            // The JIT's block table: nothing compiled yet.
            UnsafeMutableRawPointer(ops + GuestRAM.opsPerPage + 1).initializeMemory(
                as: UInt8.self, repeating: 0,
                count: (GuestRAM.codePageCapacity - GuestRAM.opsPerPage - 1) * MemoryLayout<Op>.stride)
            ram.codePages[index] = ops
            // From now on every store to this page must see the slow path.
            flushWriteTLB()
        }
        let entry = FetchTLBEntry(tag: pc & ~0xfff, ops: ops, host: ram.host(pa & ~0xfff))
        fillFetch(pc, entry)
        return entry
    }

    /// Decodes the instruction at `pc` in a page found by `fetchPage`. An
    /// instruction that straddles two pages is decoded every time and never
    /// cached. Returns nil after raising the exception.
    @inline(never)
    func decodeSlot(_ pc: UInt64, _ entry: FetchTLBEntry) -> Op? {
        let offset = Int(pc & 0xfff)
        let low = entry.host.load(fromByteOffset: offset, as: UInt16.self)
        if low & 3 != 3 {
            let op = Decoder.decodeCompressed(low).placed(at: offset)
            entry.ops[offset >> 1] = op
            return op
        }
        if offset == 0xffe {
            let next = pc &+ 2
            let (pa, fault) = translate(next, .fetch)
            if let fault { raiseException(fault, tval: next); return nil }
            guard ram.contains(pa, count: 2) else { raiseException(.instructionAccessFault, tval: next); return nil }
            let high = ram.host(pa).load(as: UInt16.self)
            return Decoder.decode(UInt32(low) | UInt32(high) << 16).placed(at: offset, straddling: true)
        }
        let high = entry.host.load(fromByteOffset: offset + 2, as: UInt16.self)
        let op = Decoder.decode(UInt32(low) | UInt32(high) << 16).placed(at: offset)
        entry.ops[offset >> 1] = op
        return op
    }
}
