// Device access to guest RAM (DMA), as a bus master sees it: physical addresses, no MMU.
// Writes log the pages dirty for live migration and drop decoded instructions they
// overwrite, exactly like the hart's stores, so a disk read into a code page or during a
// migration is never lost. Kept apart from GuestRAM.swift: devices are its only users.

extension GuestRAM {
    /// Host memory for `count` bytes at guest physical `pa`, or nil when the range is not RAM.
    func dmaRange(_ pa: UInt64, count: Int) -> UnsafeMutableRawBufferPointer? {
        guard count >= 0, contains(pa, count: max(count, 1)) else { return nil }
        return UnsafeMutableRawBufferPointer(start: host(pa), count: count)
    }

    /// Copies guest RAM into `buffer`; false when the range is not RAM.
    func dmaRead(_ pa: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard let source = dmaRange(pa, count: buffer.count) else { return false }
        if buffer.count > 0 { buffer.copyMemory(from: UnsafeRawBufferPointer(source)) }
        return true
    }

    /// Copies `buffer` into guest RAM; false (and nothing written) when the range is not RAM.
    func dmaWrite(_ pa: UInt64, from buffer: UnsafeRawBufferPointer) -> Bool {
        guard let target = dmaRange(pa, count: buffer.count) else { return false }
        guard buffer.count > 0 else { return true }
        target.copyMemory(from: buffer)
        dmaDidWrite(pa, count: buffer.count)
        return true
    }

    /// After a device wrote `count` bytes at `pa` through `dmaRange`.
    func dmaDidWrite(_ pa: UInt64, count: Int) {
        guard count > 0 else { return }
        invalidateCode(physical: pa, count: count)
        if dirtyLogging {
            for page in pageIndex(physical: pa)...pageIndex(physical: pa &+ UInt64(count - 1)) { markDirty(pageIndex: page) }
        }
    }

    func dmaLoad16(_ pa: UInt64) -> UInt16? { dmaRange(pa, count: 2).map { $0.loadUnaligned(as: UInt16.self) } }
    func dmaLoad32(_ pa: UInt64) -> UInt32? { dmaRange(pa, count: 4).map { $0.loadUnaligned(as: UInt32.self) } }
    func dmaLoad64(_ pa: UInt64) -> UInt64? { dmaRange(pa, count: 8).map { $0.loadUnaligned(as: UInt64.self) } }

    @discardableResult
    func dmaStore16(_ pa: UInt64, _ value: UInt16) -> Bool {
        withUnsafeBytes(of: value.littleEndian) { dmaWrite(pa, from: $0) }
    }

    @discardableResult
    func dmaStore32(_ pa: UInt64, _ value: UInt32) -> Bool {
        withUnsafeBytes(of: value.littleEndian) { dmaWrite(pa, from: $0) }
    }
}
