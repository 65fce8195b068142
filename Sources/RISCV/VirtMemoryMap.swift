// The `virt` board's physical address map: one table, like QEMU's
// hw/riscv/virt.c `virt_memmap[]`. Device creation, the bus and every
// device-tree node read their addresses from here; no address literal for a
// device appears anywhere else.

/// A region of the physical address space.
public struct MemoryRegion: Sendable, Equatable {
    public let base: UInt64
    public let size: UInt64
    public init(base: UInt64, size: UInt64) {
        self.base = base
        self.size = size
    }
    @inline(__always)
    public func contains(_ address: UInt64) -> Bool { address &- base < size }
    public var end: UInt64 { base &+ size }
}

/// The regions of QEMU's `virt` machine that emupanel models.
public enum VirtRegion: Int, CaseIterable, Sendable {
    case test
    case clint
    case plic
    case uart0
    /// emupanel's host entropy source; only machine types that list it map it.
    case hostRNG
    /// The first of `VirtIRQ.virtioCount` virtio-mmio transports, one region size apart.
    case virtio
    case dram
}

public enum VirtMemoryMap {
    /// Indexed by `VirtRegion.rawValue`; the DRAM size is the default and is
    /// replaced by the configured memory size (`dram(size:)`).
    static let table: [MemoryRegion] = [
        MemoryRegion(base: 0x0010_0000, size: 0x1000),  // test (sifive_test finisher)
        MemoryRegion(base: 0x0200_0000, size: 0x1_0000),  // clint
        MemoryRegion(base: 0x0C00_0000, size: 0x60_0000),  // plic (1 hart: 2 contexts)
        MemoryRegion(base: 0x1000_0000, size: 0x100),  // uart0
        MemoryRegion(base: 0x0010_2000, size: 0x1000),  // host-rng (a hole in QEMU's map, after VIRT_RTC)
        MemoryRegion(base: 0x1000_1000, size: 0x1000),  // virtio (transport 0; QEMU's VIRT_VIRTIO)
        MemoryRegion(base: 0x8000_0000, size: 0x800_0000),  // dram (128 MiB default)
    ]

    public static subscript(_ region: VirtRegion) -> MemoryRegion { table[region.rawValue] }

    /// DRAM with the configured size.
    public static func dram(size: UInt64) -> MemoryRegion {
        MemoryRegion(base: table[VirtRegion.dram.rawValue].base, size: size)
    }

    /// virtio-mmio transport `slot` (QEMU: base + slot·size, slots 0..<VIRTIO_COUNT).
    public static func virtioTransport(_ slot: Int) -> MemoryRegion {
        let first = table[VirtRegion.virtio.rawValue]
        return MemoryRegion(base: first.base + UInt64(slot) * first.size, size: first.size)
    }

    /// Where QEMU loads a kernel when a BIOS occupies the start of DRAM
    /// (hw/riscv/boot.c: `riscv_calc_kernel_start_addr`, 2 MiB aligned for RV64).
    public static let kernelOffset: UInt64 = 0x20_0000
}

/// PLIC interrupt sources of the `virt` board (QEMU include/hw/riscv/virt.h).
public enum VirtIRQ {
    public static let uart0: Int = 10
    /// virtio-mmio transport n drives source `virtio + n` (QEMU's VIRTIO_IRQ).
    public static let virtio: Int = 1
    /// QEMU's VIRTIO_COUNT.
    public static let virtioCount: Int = 8
    /// `VIRT_IRQCHIP_NUM_SOURCES`: sources 1..95, the DT's `riscv,ndev` is 96.
    public static let sourceCount: Int = 96
}
