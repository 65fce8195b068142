// The system bus: physical address -> device, from the memory-map table.
// MMIO is always the slow path (RAM is reached through the hart's TLB), so a
// linear walk over a handful of regions is plenty.

/// A device only some machine types carry, at its VirtMemoryMap region.
struct MappedDevice {
    let id: String
    let region: MemoryRegion
    let device: any VirtBusDevice
}

final class Bus {
    let finisher: TestFinisher
    let clint: CLINT
    let plic: PLIC
    let uart0: UART16550
    /// Devices of this machine type beyond the four every virt board has; empty on types that
    /// list none, so nothing answers at their addresses there (an access faults).
    let optionalDevices: [MappedDevice]

    private let testRegion = VirtMemoryMap[.test]
    private let clintRegion = VirtMemoryMap[.clint]
    private let plicRegion = VirtMemoryMap[.plic]
    private let uartRegion = VirtMemoryMap[.uart0]

    init(clock: GuestClock, uart0: UART16550, optionalDevices: [MappedDevice] = []) {
        finisher = TestFinisher()
        clint = CLINT(clock: clock)
        plic = PLIC()
        self.uart0 = uart0
        self.optionalDevices = optionalDevices
    }

    /// nil: nothing is mapped there (the hart raises an access fault, as
    /// QEMU does for unassigned addresses).
    func read(_ pa: UInt64, size: Int) -> UInt64? {
        if uartRegion.contains(pa) {
            let v = uart0.read(offset: pa - uartRegion.base, size: size)
            updateUARTInterrupt()
            return v
        }
        if clintRegion.contains(pa) { return clint.read(offset: pa - clintRegion.base, size: size) }
        if plicRegion.contains(pa) {
            let v = plic.read(offset: pa - plicRegion.base, size: size)
            return v
        }
        if testRegion.contains(pa) { return finisher.read(offset: pa - testRegion.base, size: size) }
        for mapped in optionalDevices where mapped.region.contains(pa) {
            return mapped.device.read(offset: pa - mapped.region.base, size: size)
        }
        return nil
    }

    func write(_ pa: UInt64, size: Int, value: UInt64) -> Bool {
        if uartRegion.contains(pa) {
            uart0.write(offset: pa - uartRegion.base, size: size, value: value)
            updateUARTInterrupt()
            return true
        }
        if clintRegion.contains(pa) { clint.write(offset: pa - clintRegion.base, size: size, value: value); return true }
        if plicRegion.contains(pa) {
            plic.write(offset: pa - plicRegion.base, size: size, value: value)
            // A completion reopens the gateway: a line still high is pending again at once.
            updateInterrupts()
            return true
        }
        if testRegion.contains(pa) { finisher.write(offset: pa - testRegion.base, size: size, value: value); return true }
        for mapped in optionalDevices where mapped.region.contains(pa) {
            mapped.device.write(offset: pa - mapped.region.base, size: size, value: value)
            if let irq = mapped.device.irq { plic.setLevel(irq: irq, high: mapped.device.interruptLine) }
            return true
        }
        return false
    }

    /// An access to a device changes that device's line only: the UART's console polling (U-Boot,
    /// Linux's early console) then costs one PLIC gateway update, not one per device on the board.
    private func updateUARTInterrupt() {
        plic.setLevel(irq: VirtIRQ.uart0, high: uart0.interruptLine)
    }

    /// Every device's interrupt line into the PLIC (a slice boundary, a load, a completion).
    func updateInterrupts() {
        plic.setLevel(irq: VirtIRQ.uart0, high: uart0.interruptLine)
        for mapped in optionalDevices {
            if let irq = mapped.device.irq { plic.setLevel(irq: irq, high: mapped.device.interruptLine) }
        }
    }

    /// The mip bits the devices drive now.
    var mipLines: UInt64 { clint.lines | plic.lines }

    func reset() {
        finisher.reset()
        clint.reset()
        plic.reset()
        uart0.reset()
        for mapped in optionalDevices { mapped.device.reset() }
    }
}
