// The virt machine's RAM and devices registered with EmulatorCore's MachineState, so
// snapshots and migration streams see exactly the state descriptions of VirtDeviceState.
import EmulatorCore
import VMState

extension VirtMachine {
    /// QEMU names the virt board's RAM block "riscv_virt_board.ram"; streams carry this id.
    public static let ramBlockID = "riscv_virt_board.ram"

    /// A MachineState over this machine's RAM and devices. Devices register in the machine
    /// type's order — the hart before the CLINT, whose mtime re-bases on the hart's count.
    /// Call it on the CPU thread or while the CPU is parked.
    public func machineState() throws -> MachineState { try machineState(for: machineType) }

    /// The same for `type`, which may differ from the type the machine was built as (a test
    /// that loads a stream as another type); its device list decides what registers.
    public func machineState(for type: MachineType) throws -> MachineState {
        let block = RAMBlock(idstr: Self.ramBlockID, memory: UnsafeMutableRawBufferPointer(start: ram.bytes, count: ram.size))
        let state = MachineState(machineType: type, ramBlocks: [block])
        for spec in type.devices {
            // The fixed devices every virt board has are found by their type; the others are
            // the bus devices the type's list named when the board was built.
            switch ObjectIdentifier(spec.deviceType) {
            case ObjectIdentifier(Hart.self): try state.register(hart, id: spec.id)
            case ObjectIdentifier(CLINT.self): try state.register(bus.clint, id: spec.id)
            case ObjectIdentifier(PLIC.self): try state.register(bus.plic, id: spec.id)
            case ObjectIdentifier(UART16550.self): try state.register(bus.uart0, id: spec.id)
            case ObjectIdentifier(TestFinisher.self): try state.register(bus.finisher, id: spec.id)
            default:
                guard let mapped = bus.optionalDevices.first(where: { $0.id == spec.id }) else {
                    throw EmulatorCore.MachineError.unknownDevice(machineType: type.name, id: spec.id)
                }
                try mapped.device.register(with: state, id: spec.id)
            }
        }
        return state
    }

    /// After a load replaced RAM and device state: decoded code and translations are stale,
    /// and interrupt lines are derived from the new device state.
    public func stateDidLoad() {
        ram.invalidateAllCode()
        hart.flushTLB()
        bus.updateInterrupts()
        hart.scratch.pointee.mipLines = bus.mipLines
    }

    /// The pages written since the last call (call on the CPU thread or while parked).
    public func takeDirtyPages() -> RAMPageBitmap {
        RAMPageBitmap(words: fetchAndClearDirtyPages(), pageCount: ram.pageCount)
    }

    /// The pages a stream must carry: every page the host populated; the others are zero.
    /// A load starts from zeroed RAM (`loadState`), so leaving them out loses nothing.
    public func populatedPages() -> RAMPageBitmap {
        RAMPageBitmap(words: ram.populatedBitmap(), pageCount: ram.pageCount)
    }

    /// Replaces RAM and device state with a stream's. RAM is zeroed first (the pages go back
    /// to the host) because a stream carries only the pages its source had populated, and
    /// this machine's own images would otherwise show through the gaps. So even a stream
    /// refused at its header leaves RAM changed: load into a machine that can be discarded.
    @discardableResult
    public func loadState(
        from source: ByteSource, as type: MachineType,
        limits: QEVMStreamLimits = QEVMStreamLimits()
    ) throws -> RAMTransferStats {
        let state = try machineState(for: type)
        try state.checkMigratable()
        ram.clear()
        let stats = try state.load(from: source, limits: limits)
        stateDidLoad()
        return stats
    }
}
