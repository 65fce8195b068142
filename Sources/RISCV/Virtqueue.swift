// A split virtqueue (VIRTIO 1.1 §2.6): the descriptor table, the driver's available ring
// and the device's used ring, all in guest RAM at addresses the driver gave the transport.
// The device side only: take the next available chain, give it back used.
import VMState

/// One buffer of a descriptor chain: guest physical address and length, and whether the
/// device may write it (VIRTQ_DESC_F_WRITE).
struct VirtqueueBuffer: Equatable {
    var address: UInt64
    var length: UInt32
    var deviceWritable: Bool
}

/// A chain the driver made available: its head index (given back in the used ring) and buffers.
struct VirtqueueChain {
    var head: UInt16
    var buffers: [VirtqueueBuffer]
}

struct Virtqueue: Equatable, Sendable {
    // Descriptor flags (§2.6.5).
    static let flagNext: UInt16 = 1
    static let flagWrite: UInt16 = 2
    static let flagIndirect: UInt16 = 4
    /// VIRTQ_AVAIL_F_NO_INTERRUPT (§2.6.7): the driver asks for no interrupt.
    static let availNoInterrupt: UInt16 = 1

    /// The guest-visible registers and the device's ring positions: what a snapshot keeps.
    struct State: Equatable, Sendable {
        var size: UInt32 = 0
        var ready: UInt32 = 0
        var descriptorTable: UInt64 = 0
        var availableRing: UInt64 = 0
        var usedRing: UInt64 = 0
        /// The next available-ring entry the device will take (QEMU's last_avail_idx).
        var lastAvailable: UInt16 = 0
        /// The used ring's idx the device last published (QEMU's used_idx).
        var usedIndex: UInt16 = 0
    }

    var state = State()

    /// Why a chain could not be taken: the driver broke the protocol (the transport then
    /// sets DEVICE_NEEDS_RESET, as QEMU's virtio_error does).
    enum Failure: Error, Equatable {
        case badRing(String)
    }

    static let description = VMStateDescription<State>(
        name: "virtqueue", versionID: 1, minimumVersionID: 1,
        fields: [
            .uint32(\.size, name: "num"), .uint32(\.ready),
            .uint64(\.descriptorTable, name: "desc"), .uint64(\.availableRing, name: "avail"),
            .uint64(\.usedRing, name: "used"),
            .uint16(\.lastAvailable, name: "last_avail_idx"), .uint16(\.usedIndex, name: "used_idx"),
        ])

    /// The next chain the driver made available, or nil when there is none.
    mutating func next(in ram: GuestRAM) throws(Failure) -> VirtqueueChain? {
        let s = state
        guard s.ready != 0, s.size > 0 else { return nil }
        guard let availableIndex = ram.dmaLoad16(s.availableRing + 2) else { throw .badRing("available ring outside RAM") }
        if availableIndex == s.lastAvailable { return nil }
        // More entries than the ring holds means a driver bug, not a chain.
        guard UInt32(availableIndex &- s.lastAvailable) <= s.size else { throw .badRing("available index jumped by more than the queue size") }
        let slot = UInt64(s.lastAvailable) % UInt64(s.size)
        guard let head = ram.dmaLoad16(s.availableRing + 4 + 2 * slot) else { throw .badRing("available ring outside RAM") }
        state.lastAvailable &+= 1
        return VirtqueueChain(head: head, buffers: try buffers(from: head, in: ram))
    }

    private func buffers(from head: UInt16, in ram: GuestRAM) throws(Failure) -> [VirtqueueBuffer] {
        var buffers: [VirtqueueBuffer] = []
        var index = head
        var table = state.descriptorTable
        var tableSize = state.size
        var indirect = false
        var steps: UInt32 = 0
        while true {
            guard UInt32(index) < tableSize else { throw .badRing("descriptor \(index) beyond the table") }
            steps += 1
            guard steps <= tableSize else { throw .badRing("descriptor chain loops") }
            let at = table + 16 * UInt64(index)
            guard let address = ram.dmaLoad64(at), let length = ram.dmaLoad32(at + 8),
                let flags = ram.dmaLoad16(at + 12), let next = ram.dmaLoad16(at + 14)
            else {
                throw .badRing("descriptor table outside RAM")
            }
            if flags & Virtqueue.flagIndirect != 0 {
                // An indirect table (§2.6.5.3): only as the sole descriptor of a direct chain.
                guard !indirect, buffers.isEmpty, length % 16 == 0, length > 0 else { throw .badRing("bad indirect descriptor") }
                indirect = true
                table = address
                tableSize = length / 16
                index = 0
                steps = 0
                continue
            }
            buffers.append(VirtqueueBuffer(address: address, length: length, deviceWritable: flags & Virtqueue.flagWrite != 0))
            if flags & Virtqueue.flagNext == 0 { return buffers }
            index = next
        }
    }

    /// Gives a chain back with `written` bytes written into its device-writable buffers.
    /// Returns whether the driver wants an interrupt for it.
    mutating func complete(_ chain: VirtqueueChain, written: UInt32, in ram: GuestRAM) throws(Failure) -> Bool {
        let s = state
        let slot = UInt64(s.usedIndex) % UInt64(s.size)
        let element = s.usedRing + 4 + 8 * slot
        guard ram.dmaStore32(element, UInt32(chain.head)), ram.dmaStore32(element + 4, written) else {
            throw .badRing("used ring outside RAM")
        }
        state.usedIndex &+= 1
        guard ram.dmaStore16(s.usedRing + 2, state.usedIndex) else { throw .badRing("used ring outside RAM") }
        let flags = ram.dmaLoad16(s.availableRing) ?? 0
        return flags & Virtqueue.availNoInterrupt == 0
    }
}
