// A virtio-mmio transport, version 2 ("modern", VIRTIO 1.1 §4.2.2), as QEMU's virt board
// has eight of at 0x10001000 + 0x1000·n with PLIC sources 1 + n. A transport without a
// device answers DeviceID 0, which drivers skip (QEMU's empty slots do the same). The
// device behind it (`VirtioDevice`, e.g. virtio-blk) handles its queues synchronously when
// the driver notifies, so a request completes at an exact instruction: what --icount and
// snapshots need.
import EmulatorCore
import VMState

/// What sits behind a transport: device type, features, configuration space, requests.
protocol VirtioDevice: AnyObject {
    /// Device ID (VIRTIO 1.1 §5): 2 = block.
    var deviceID: UInt32 { get }
    /// Device-specific feature bits; the transport adds VIRTIO_F_VERSION_1.
    var features: UInt64 { get }
    /// The largest queue the driver may set up (QueueNumMax).
    var queueSizeMax: UInt32 { get }
    /// Little-endian read of the configuration space.
    func readConfig(offset: Int, size: Int) -> UInt64
    /// Handles one request chain; returns the bytes written into its device-writable buffers.
    func process(_ chain: VirtqueueChain, ram: GuestRAM) -> UInt32
}

final class VirtioMMIO {
    // Register offsets (VIRTIO 1.1 §4.2.2, table "MMIO Device Register Layout").
    static let magicValue: UInt64 = 0x000, version: UInt64 = 0x004, deviceIDRegister: UInt64 = 0x008
    static let vendorID: UInt64 = 0x00c, deviceFeatures: UInt64 = 0x010, deviceFeaturesSel: UInt64 = 0x014
    static let driverFeatures: UInt64 = 0x020, driverFeaturesSel: UInt64 = 0x024
    static let queueSel: UInt64 = 0x030, queueNumMax: UInt64 = 0x034, queueNum: UInt64 = 0x038
    static let queueReady: UInt64 = 0x044, queueNotify: UInt64 = 0x050
    static let interruptStatus: UInt64 = 0x060, interruptACK: UInt64 = 0x064, status: UInt64 = 0x070
    static let queueDescLow: UInt64 = 0x080, queueDescHigh: UInt64 = 0x084
    static let queueDriverLow: UInt64 = 0x090, queueDriverHigh: UInt64 = 0x094
    static let queueDeviceLow: UInt64 = 0x0a0, queueDeviceHigh: UInt64 = 0x0a4
    static let configGeneration: UInt64 = 0x0fc, config: UInt64 = 0x100

    static let magic: UInt64 = 0x7472_6976  // "virt"
    static let vendorQEMU: UInt64 = 0x554d_4551  // "QEMU", as QEMU's transports answer
    static let featureVersion1: UInt64 = 1 << 32  // VIRTIO_F_VERSION_1
    // Device status bits (§2.1).
    static let statusFeaturesOK: UInt32 = 8
    static let statusDriverOK: UInt32 = 4
    static let statusNeedsReset: UInt32 = 64
    // InterruptStatus bits (§4.2.2).
    static let interruptUsedBuffer: UInt32 = 1
    static let interruptConfigChange: UInt32 = 2
    /// Queues a transport holds; virtio-blk uses one.
    static let queueCount = 1

    struct State: Equatable, Sendable {
        /// The device ID the guest saw; a load into a slot with another device is refused.
        var deviceID: UInt32 = 0
        var status: UInt32 = 0
        var deviceFeaturesSel: UInt32 = 0
        var driverFeaturesSel: UInt32 = 0
        var driverFeatures: UInt64 = 0
        var queueSel: UInt32 = 0
        var interruptStatus: UInt32 = 0
        var queues = [Virtqueue.State](repeating: Virtqueue.State(), count: VirtioMMIO.queueCount)
        /// The device this transport has here (not migrated: checked against `deviceID`).
        var localDeviceID: UInt32 = 0
    }

    /// Slot n of the board's virtio-mmio region.
    let slot: Int
    private(set) var device: (any VirtioDevice)?
    private var queues = [Virtqueue](repeating: Virtqueue(), count: VirtioMMIO.queueCount)
    private var registers = State()
    private var ram: GuestRAM?

    init(properties: DeviceProperties) throws {
        slot = Int(properties.uint("slot"))
        guard slot < VirtIRQ.virtioCount else {
            throw EmulatorCore.MachineError.invalidPropertyValue(driver: Self.driver, property: "slot", value: String(slot))
        }
    }

    /// Plugs a device in (the board does, from the machine's drives, before the guest runs).
    func plug(_ device: any VirtioDevice) {
        self.device = device
        registers.deviceID = device.deviceID
        registers.localDeviceID = device.deviceID
    }

    var deviceFeatureBits: UInt64 { device.map { $0.features | VirtioMMIO.featureVersion1 } ?? 0 }

    var state: State {
        get {
            var s = registers
            s.queues = queues.map(\.state)
            return s
        }
        set {
            registers = newValue
            registers.deviceID = registers.localDeviceID
            for i in 0..<VirtioMMIO.queueCount { queues[i].state = newValue.queues[i] }
        }
    }

    /// The line into the PLIC: high while an interrupt is not acknowledged.
    var interruptLine: Bool { registers.interruptStatus != 0 }

    // MARK: MMIO

    func read(offset: UInt64, size: Int) -> UInt64 {
        if offset >= VirtioMMIO.config {
            guard let device, [1, 2, 4, 8].contains(size) else { return 0 }
            return device.readConfig(offset: Int(offset - VirtioMMIO.config), size: size)
        }
        guard size == 4 else {
            GuestErrorLog.log("virtio-mmio\(slot): \(size)-byte read at 0x\(String(offset, radix: 16)) (registers are 32-bit)")
            return 0
        }
        switch offset {
        case VirtioMMIO.magicValue: return VirtioMMIO.magic
        case VirtioMMIO.version: return 2
        case VirtioMMIO.deviceIDRegister: return UInt64(registers.deviceID)
        case VirtioMMIO.vendorID: return VirtioMMIO.vendorQEMU
        default: break
        }
        guard device != nil else { return 0 }
        let queue = Int(registers.queueSel)
        let q = queue < VirtioMMIO.queueCount ? queues[queue].state : Virtqueue.State()
        switch offset {
        case VirtioMMIO.deviceFeatures:
            switch registers.deviceFeaturesSel {
            case 0: return deviceFeatureBits & 0xffff_ffff
            case 1: return deviceFeatureBits >> 32
            default: return 0
            }
        case VirtioMMIO.queueNumMax: return queue < VirtioMMIO.queueCount ? UInt64(device?.queueSizeMax ?? 0) : 0
        case VirtioMMIO.queueReady: return UInt64(q.ready)
        case VirtioMMIO.interruptStatus: return UInt64(registers.interruptStatus)
        case VirtioMMIO.status: return UInt64(registers.status)
        case VirtioMMIO.configGeneration: return 0
        default:
            GuestErrorLog.log("virtio-mmio\(slot): read of write-only or unknown register 0x\(String(offset, radix: 16))")
            return 0
        }
    }

    func write(offset: UInt64, size: Int, value: UInt64) {
        guard device != nil else { return }
        guard size == 4, offset < VirtioMMIO.config else {
            GuestErrorLog.log("virtio-mmio\(slot): \(size)-byte write at 0x\(String(offset, radix: 16)) ignored")
            return
        }
        let v = UInt32(truncatingIfNeeded: value)
        let queue = Int(registers.queueSel)
        let validQueue = queue < VirtioMMIO.queueCount
        func setQueue(_ body: (inout Virtqueue.State) -> Void) {
            if validQueue { body(&queues[queue].state) }
        }
        switch offset {
        case VirtioMMIO.deviceFeaturesSel: registers.deviceFeaturesSel = v
        case VirtioMMIO.driverFeaturesSel: registers.driverFeaturesSel = v
        case VirtioMMIO.driverFeatures:
            // Features are fixed once FEATURES_OK is set (§2.2).
            guard registers.status & VirtioMMIO.statusFeaturesOK == 0 else { break }
            switch registers.driverFeaturesSel {
            case 0: registers.driverFeatures = (registers.driverFeatures & ~0xffff_ffff) | UInt64(v)
            case 1: registers.driverFeatures = (registers.driverFeatures & 0xffff_ffff) | UInt64(v) << 32
            default: break
            }
        case VirtioMMIO.queueSel: registers.queueSel = v
        case VirtioMMIO.queueNum:
            setQueue { $0.size = v <= (self.device?.queueSizeMax ?? 0) && v.nonzeroBitCount == 1 ? v : 0 }
        case VirtioMMIO.queueReady: setQueue { $0.ready = v & 1 }
        case VirtioMMIO.queueDescLow: setQueue { $0.descriptorTable = ($0.descriptorTable & ~0xffff_ffff) | UInt64(v) }
        case VirtioMMIO.queueDescHigh: setQueue { $0.descriptorTable = ($0.descriptorTable & 0xffff_ffff) | UInt64(v) << 32 }
        case VirtioMMIO.queueDriverLow: setQueue { $0.availableRing = ($0.availableRing & ~0xffff_ffff) | UInt64(v) }
        case VirtioMMIO.queueDriverHigh: setQueue { $0.availableRing = ($0.availableRing & 0xffff_ffff) | UInt64(v) << 32 }
        case VirtioMMIO.queueDeviceLow: setQueue { $0.usedRing = ($0.usedRing & ~0xffff_ffff) | UInt64(v) }
        case VirtioMMIO.queueDeviceHigh: setQueue { $0.usedRing = ($0.usedRing & 0xffff_ffff) | UInt64(v) << 32 }
        case VirtioMMIO.queueNotify: notify(queue: Int(v))
        case VirtioMMIO.interruptACK: registers.interruptStatus &= ~v
        case VirtioMMIO.status: writeStatus(v)
        default:
            GuestErrorLog.log("virtio-mmio\(slot): write of read-only or unknown register 0x\(String(offset, radix: 16))")
        }
    }

    private func writeStatus(_ v: UInt32) {
        if v == 0 { reset(); return }
        var status = v
        if status & VirtioMMIO.statusFeaturesOK != 0 && registers.status & VirtioMMIO.statusFeaturesOK == 0 {
            // FEATURES_OK sticks only for a subset of what was offered that includes VERSION_1 (§2.2).
            let accepted =
                registers.driverFeatures & ~deviceFeatureBits == 0
                && registers.driverFeatures & VirtioMMIO.featureVersion1 != 0
            if !accepted { status &= ~VirtioMMIO.statusFeaturesOK }
        }
        registers.status = status
    }

    /// Runs every request the driver made available on `queue`.
    private func notify(queue: Int) {
        guard queue < VirtioMMIO.queueCount, let device, let ram,
            registers.status & VirtioMMIO.statusDriverOK != 0,
            registers.status & VirtioMMIO.statusNeedsReset == 0
        else { return }
        var interrupt = false
        do {
            while let chain = try queues[queue].next(in: ram) {
                let written = device.process(chain, ram: ram)
                if try queues[queue].complete(chain, written: written, in: ram) { interrupt = true }
            }
        } catch {
            // A driver that breaks the ring protocol: stop and ask for a reset (QEMU's virtio_error).
            GuestErrorLog.log("virtio-mmio\(slot): \(error); the device needs a reset")
            registers.status |= VirtioMMIO.statusNeedsReset
            registers.interruptStatus |= VirtioMMIO.interruptConfigChange
            return
        }
        if interrupt { registers.interruptStatus |= VirtioMMIO.interruptUsedBuffer }
    }

    func attach(ram: GuestRAM) { self.ram = ram }

    func reset() {
        let local = registers.localDeviceID
        registers = State()
        registers.deviceID = local
        registers.localDeviceID = local
        queues = [Virtqueue](repeating: Virtqueue(), count: VirtioMMIO.queueCount)
    }
}

// MARK: - Migration, properties, device tree

extension VirtioMMIO: VirtBusDevice {
    static let driver = "virtio-mmio"
    static let migration = DeviceMigration<State>.vmstate(
        VMStateDescription(
            name: "virtio-mmio", versionID: 1, minimumVersionID: 1,
            fields: [
                .uint32(\.deviceID, name: "device_id"), .uint32(\.status),
                .uint32(\.deviceFeaturesSel, name: "host_features_sel"), .uint32(\.driverFeaturesSel, name: "guest_features_sel"),
                .uint64(\.driverFeatures, name: "guest_features"), .uint32(\.queueSel, name: "queue_sel"),
                .uint32(\.interruptStatus, name: "isr"),
                .nestedArray(\.queues, count: VirtioMMIO.queueCount, Virtqueue.description, name: "vq"),
            ],
            notMigrated: ["localDeviceID"],
            postLoad: { state, version in
                // The load starts from this machine's state, so localDeviceID is what this slot holds.
                guard state.deviceID == state.localDeviceID else {
                    throw VMStateError.postLoadFailed(
                        device: "virtio-mmio", version: version,
                        reason:
                            "the stream's device \(VirtioMMIO.name(state.deviceID)) differs from this slot's \(VirtioMMIO.name(state.localDeviceID))")
                }
            }))

    static let properties: [PropertyDefinition] = [
        .uint(
            "slot", default: 0,
            description: "which of the board's virtio-mmio transports (0-7): address 0x10001000 + 0x1000·slot, PLIC source 1 + slot")
    ]

    static let region = VirtRegion.virtio

    var mappedRegion: MemoryRegion { VirtMemoryMap.virtioTransport(slot) }
    var irq: Int? { VirtIRQ.virtio + slot }

    func deviceTreeNode(_ fdt: inout FDTBuilder) {
        let region = mappedRegion
        fdt.beginNode("virtio_mmio@\(String(region.base, radix: 16))")
        fdt.property("interrupts", cells: [UInt32(VirtIRQ.virtio + slot)])
        fdt.property("interrupt-parent", cells: [VirtDeviceTree.plicPhandle])
        fdt.property("reg", region: region)
        fdt.property("compatible", string: "virtio,mmio")
        fdt.endNode()
    }

    static func name(_ deviceID: UInt32) -> String {
        switch deviceID {
        case 0: return "(none)"
        case 2: return "virtio-blk"
        default: return "virtio device \(deviceID)"
        }
    }
}
