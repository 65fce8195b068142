// A device the virt board maps only on the machine types that list it, like the devices
// QEMU's board code creates from machine options. Everything about it lives in its own
// file — registers, MMIO, reset, migration declaration, properties, device-tree node —
// and its address is its row in VirtMemoryMap. The board builds it from the machine
// type's DeviceSpec, so adding one is that file, its address row, and one DeviceSpec
// line in the machine type that carries it.
import EmulatorCore

protocol VirtBusDevice: Device {
    /// Where it is mapped: its row in VirtMemoryMap (no address literal elsewhere).
    static var region: VirtRegion { get }
    /// This instance's range: the region itself, or one slot of a region that holds several.
    var mappedRegion: MemoryRegion { get }
    /// The PLIC source it drives, if any, and that line's level now.
    var irq: Int? { get }
    var interruptLine: Bool { get }
    /// Built from the machine type's resolved properties for it (compat applied).
    init(properties: DeviceProperties) throws
    /// MMIO at `offset` inside its region; a bad access is logged and ignored, never fatal.
    func read(offset: UInt64, size: Int) -> UInt64
    func write(offset: UInt64, size: Int, value: UInt64)
    /// Power-on state (machine reset, finisher 0x7777).
    func reset()
    /// Its node under /soc, one small function per device as QEMU's create_fdt_*.
    func deviceTreeNode(_ fdt: inout FDTBuilder)
    /// Called once the board exists: a bus master gets the RAM it reads and writes (DMA).
    func attach(ram: GuestRAM)
}

extension VirtBusDevice {
    var mappedRegion: MemoryRegion { VirtMemoryMap[Self.region] }
    var irq: Int? { nil }
    var interruptLine: Bool { false }
    func attach(ram: GuestRAM) {}

    /// Registers it with a MachineState; an unmigratable one registers too, so the machine
    /// type's blockers can name it.
    func register(with state: MachineState, id: String) throws {
        try state.register(self, id: id)
    }
}
