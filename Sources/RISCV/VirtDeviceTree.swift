// The `virt` machine's device tree, one small function per node like QEMU's
// hw/riscv/virt.c create_fdt_*; every address comes from VirtMemoryMap.
// OpenSBI needs mmu-type (else it disables the hart), timebase-frequency,
// chosen/stdout-path and the UART's clock-frequency.

/// What /chosen tells the kernel besides the console (QEMU's -append and -initrd).
public struct BootArguments: Sendable, Equatable {
    /// The kernel command line (`bootargs`); nil or empty leaves the property out, as QEMU does.
    public var commandLine: String?
    /// Where the initrd lies in guest physical memory (`linux,initrd-start` / `-end`).
    public var initrd: Range<UInt64>?

    public init(commandLine: String? = nil, initrd: Range<UInt64>? = nil) {
        self.commandLine = commandLine
        self.initrd = initrd
    }
}

enum VirtDeviceTree {
    // phandles
    static let cpuPhandle: UInt32 = 1
    static let intcPhandle: UInt32 = 2
    static let plicPhandle: UInt32 = 3
    static let testPhandle: UInt32 = 4

    /// The ISA string OpenSBI and U-Boot parse (lower case, multi-letter
    /// extensions after '_').
    static let isa = "rv64imac_zicsr_zifencei"

    /// `optionalDevices`: the machine type's devices beyond the fixed four, each adding its node.
    static func build(
        memory: MemoryRegion, optionalDevices: [any VirtBusDevice] = [],
        boot: BootArguments = BootArguments()
    ) -> [UInt8] {
        var fdt = FDTBuilder()
        fdt.beginNode("")
        fdt.property("#address-cells", cells: [2])
        fdt.property("#size-cells", cells: [2])
        fdt.property("compatible", string: "riscv-virtio")
        fdt.property("model", string: "riscv-virtio,qemu")
        chosen(&fdt, boot)
        resetNodes(&fdt)
        memoryNode(&fdt, memory)
        cpus(&fdt)
        fdt.beginNode("soc")
        fdt.property("#address-cells", cells: [2])
        fdt.property("#size-cells", cells: [2])
        fdt.property("compatible", string: "simple-bus")
        fdt.property("ranges")
        test(&fdt)
        uart(&fdt)
        plic(&fdt)
        clint(&fdt)
        for device in optionalDevices { device.deviceTreeNode(&fdt) }
        fdt.endNode()
        fdt.endNode()
        return fdt.finish()
    }

    static func nodeName(_ name: String, _ region: VirtRegion) -> String {
        "\(name)@\(String(VirtMemoryMap[region].base, radix: 16))"
    }

    /// The initrd's bounds are single cells like QEMU 7.2's (`qemu_fdt_setprop_cell`): RAM ends
    /// below 4 GiB on this board, and Linux reads either width.
    static func chosen(_ fdt: inout FDTBuilder, _ boot: BootArguments) {
        fdt.beginNode("chosen")
        fdt.property("stdout-path", string: "/soc/" + nodeName("serial", .uart0))
        if let line = boot.commandLine, !line.isEmpty { fdt.property("bootargs", string: line) }
        if let initrd = boot.initrd {
            fdt.property("linux,initrd-start", cells: [UInt32(truncatingIfNeeded: initrd.lowerBound)])
            fdt.property("linux,initrd-end", cells: [UInt32(truncatingIfNeeded: initrd.upperBound)])
        }
        fdt.endNode()
    }

    /// syscon-poweroff / syscon-reboot over the test finisher (OpenSBI's
    /// system reset driver and Linux use these).
    static func resetNodes(_ fdt: inout FDTBuilder) {
        fdt.beginNode("poweroff")
        fdt.property("value", cells: [UInt32(TestFinisher.statusPass)])
        fdt.property("offset", cells: [UInt32(TestFinisher.finisher)])
        fdt.property("regmap", cells: [testPhandle])
        fdt.property("compatible", string: "syscon-poweroff")
        fdt.endNode()
        fdt.beginNode("reboot")
        fdt.property("value", cells: [UInt32(TestFinisher.statusReset)])
        fdt.property("offset", cells: [UInt32(TestFinisher.finisher)])
        fdt.property("regmap", cells: [testPhandle])
        fdt.property("compatible", string: "syscon-reboot")
        fdt.endNode()
    }

    static func memoryNode(_ fdt: inout FDTBuilder, _ memory: MemoryRegion) {
        fdt.beginNode("memory@\(String(memory.base, radix: 16))")
        fdt.property("device_type", string: "memory")
        fdt.property("reg", region: memory)
        fdt.endNode()
    }

    static func cpus(_ fdt: inout FDTBuilder) {
        fdt.beginNode("cpus")
        fdt.property("#address-cells", cells: [1])
        fdt.property("#size-cells", cells: [0])
        fdt.property("timebase-frequency", cells: [UInt32(GuestClock.frequency)])
        fdt.beginNode("cpu@0")
        fdt.property("phandle", cells: [cpuPhandle])
        fdt.property("device_type", string: "cpu")
        fdt.property("reg", cells: [0])
        fdt.property("status", string: "okay")
        fdt.property("compatible", string: "riscv")
        fdt.property("riscv,isa", string: isa)
        fdt.property("mmu-type", string: "riscv,sv39")
        fdt.beginNode("interrupt-controller")
        // dtc's interrupt_provider check wants #address-cells here.
        fdt.property("#address-cells", cells: [0])
        fdt.property("#interrupt-cells", cells: [1])
        fdt.property("interrupt-controller")
        fdt.property("compatible", string: "riscv,cpu-intc")
        fdt.property("phandle", cells: [intcPhandle])
        fdt.endNode()
        fdt.endNode()
        fdt.beginNode("cpu-map")
        fdt.beginNode("cluster0")
        fdt.beginNode("core0")
        fdt.property("cpu", cells: [cpuPhandle])
        fdt.endNode()
        fdt.endNode()
        fdt.endNode()
        fdt.endNode()
    }

    static func test(_ fdt: inout FDTBuilder) {
        fdt.beginNode(nodeName("test", .test))
        fdt.property("phandle", cells: [testPhandle])
        fdt.property("reg", region: VirtMemoryMap[.test])
        fdt.property("compatible", strings: ["sifive,test1", "sifive,test0", "syscon"])
        fdt.endNode()
    }

    static func uart(_ fdt: inout FDTBuilder) {
        fdt.beginNode(nodeName("serial", .uart0))
        fdt.property("interrupts", cells: [UInt32(VirtIRQ.uart0)])
        fdt.property("interrupt-parent", cells: [plicPhandle])
        fdt.property("clock-frequency", cells: [UART16550.clockFrequency])
        fdt.property("reg", region: VirtMemoryMap[.uart0])
        fdt.property("compatible", string: "ns16550a")
        fdt.endNode()
    }

    /// Contexts: M-mode external (cause 11) then S-mode external (cause 9).
    static func plic(_ fdt: inout FDTBuilder) {
        fdt.beginNode(nodeName("plic", .plic))
        fdt.property("phandle", cells: [plicPhandle])
        fdt.property("riscv,ndev", cells: [UInt32(VirtIRQ.sourceCount)])
        fdt.property("reg", region: VirtMemoryMap[.plic])
        fdt.property("interrupts-extended", cells: [intcPhandle, 11, intcPhandle, 9])
        fdt.property("interrupt-controller")
        fdt.property("compatible", strings: ["sifive,plic-1.0.0", "riscv,plic0"])
        fdt.property("#address-cells", cells: [0])
        fdt.property("#interrupt-cells", cells: [1])
        fdt.endNode()
    }

    /// Software interrupt (cause 3) and timer (cause 7) of hart 0.
    static func clint(_ fdt: inout FDTBuilder) {
        fdt.beginNode(nodeName("clint", .clint))
        fdt.property("interrupts-extended", cells: [intcPhandle, 3, intcPhandle, 7])
        fdt.property("reg", region: VirtMemoryMap[.clint])
        fdt.property("compatible", strings: ["sifive,clint0", "riscv,clint0"])
        fdt.endNode()
    }
}
