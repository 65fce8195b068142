// The "A" extension (unprivileged spec ch. 8): LR/SC with a one-address
// reservation and the AMOs as read-modify-write in the slow path. AMOs and
// LR/SC must be naturally aligned (misaligned ones raise the address-
// misaligned exception, as QEMU does) and act on RAM only.

extension Hart {
    /// False after raising an exception.
    @inline(never)
    func executeAMO(_ op: Op) -> Bool {
        let funct5 = UInt32(op.imm) & 0xff
        let isDouble = (UInt32(op.imm) >> 8) == 3
        let size = isDouble ? 8 : 4
        let address = x[Int(op.rs1)]
        let rd = Int(op.rd)
        let isLR = funct5 == 0x02
        if address & UInt64(size - 1) != 0 {
            raiseException(isLR ? .loadMisaligned : .storeMisaligned, tval: address)
            return false
        }
        @inline(__always) func extend(_ v: UInt64) -> UInt64 {
            isDouble ? v : UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: v)))
        }
        if isLR {
            let (pa, fault) = translate(address, .read)
            if let fault { raiseException(fault, tval: address); return false }
            guard ram.contains(pa, count: size) else { raiseException(.loadAccessFault, tval: address); return false }
            let p = ram.host(pa)
            let v = isDouble ? p.load(as: UInt64.self) : UInt64(p.load(as: UInt32.self))
            sp.pointee.reservation = address
            if rd != 0 { x[rd] = extend(v) }
            return true
        }
        let (pa, fault) = translate(address, .write)
        if let fault { raiseException(fault, tval: address); return false }
        guard ram.contains(pa, count: size) else { raiseException(.storeAccessFault, tval: address); return false }
        let rs2 = x[Int(op.rs2)]
        if funct5 == 0x03 {  // SC: succeeds only on the reserved address (§8.2)
            let ok = sp.pointee.reservation == address
            sp.pointee.reservation = Hart.noReservation
            if ok { storeRAM(pa, size: size, value: rs2) }
            if rd != 0 { x[rd] = ok ? 0 : 1 }
            return true
        }
        let p = ram.host(pa)
        let old = isDouble ? p.load(as: UInt64.self) : UInt64(p.load(as: UInt32.self))
        let a = extend(old)
        let b = extend(rs2)
        let new: UInt64
        switch funct5 {
        case 0x01: new = b  // amoswap
        case 0x00: new = a &+ b  // amoadd
        case 0x04: new = a ^ b  // amoxor
        case 0x0c: new = a & b  // amoand
        case 0x08: new = a | b  // amoor
        case 0x10: new = Int64(bitPattern: a) < Int64(bitPattern: b) ? a : b  // amomin
        case 0x14: new = Int64(bitPattern: a) > Int64(bitPattern: b) ? a : b  // amomax
        case 0x18: new = a < b ? a : b  // amominu
        default: new = a > b ? a : b  // amomaxu
        }
        storeRAM(pa, size: size, value: new)
        if rd != 0 { x[rd] = a }
        return true
    }
}
