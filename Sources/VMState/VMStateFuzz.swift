// What the libFuzzer target (Sources/FuzzVMState) runs: arbitrary bytes into the
// stream reader, against a small fixed machine that uses every field kind, and into
// the machine-independent inspector. Both must end every input in a value or an
// error; a crash, hang or huge allocation is a bug.

public enum VMStateFuzz {
    struct Inner: Sendable {
        var head: UInt32 = 0
        var num: UInt32 = 0
    }

    struct DeviceState: Sendable {
        var ier: UInt8 = 0
        var divider: UInt16 = 0
        var timecmp: UInt64 = 0
        var offset: Int64 = 0
        var level: Int32 = 0
        var count: UInt32 = 0
        var enabled = false
        var fifo = [UInt8](repeating: 0, count: 16)
        var regs = [UInt64](repeating: 0, count: 4)
        var length: UInt32 = 0
        var data: [UInt8] = []
        var inner = Inner()
        var entries = [Inner](repeating: Inner(), count: 2)
        var depth: UInt32 = 16
    }

    static let inner = VMStateDescription<Inner>(
        name: "fuzz-inner", versionID: 1, minimumVersionID: 1, fields: [.uint32(\.head), .uint32(\.num)])

    static let device = VMStateDescription<DeviceState>(
        name: "fuzz-device", versionID: 3, minimumVersionID: 1,
        fields: [
            .uint8(\.ier), .uint16(\.divider, since: 2), .uint64(\.timecmp), .int64(\.offset), .int32(\.level),
            .uint32(\.count), .bool(\.enabled), .bytes(\.fifo, count: 16), .uint64Array(\.regs, count: 4),
            .uint32(\.length), .vbuffer(\.data, length: \.length, maximum: 64),
            .nested(\.inner, inner, exists: { state, _ in state.enabled }), .nestedArray(\.entries, count: 2, inner),
            .unused(2, since: 3),
        ],
        subsections: [
            .init(
                VMStateDescription(
                    name: "fuzz-device/depth", versionID: 1, minimumVersionID: 1,
                    fields: [.uint32(\.depth)],
                    postLoad: { state, _ in
                        guard state.depth > 0 && state.depth <= 64 else {
                            throw VMStateError.invalidValue(
                                device: "fuzz-device/depth", version: 1,
                                field: "depth", reason: "out of range")
                        }
                    }),
                needed: { $0.depth != 16 })
        ],
        preLoad: { $0.depth = 16 })

    /// Feeds `bytes` to the QEVM reader and to the machine-independent inspector
    /// (`snapshot inspect`); the outcomes are ignored, only survival matters.
    public static func consume(_ bytes: [UInt8]) {
        _ = try? QEVMInspector.inspect(bytes)
        let pageSize = QEMUFileFormat.targetPageSize
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 * pageSize, alignment: pageSize)
        defer { memory.deallocate() }
        memory.initializeMemory(as: UInt8.self, repeating: 0)
        var states = [DeviceState(), DeviceState()]
        let entries = (0..<2).map { i in
            SaveStateEntry(instanceID: UInt32(i), description: device, get: { states[i] }, set: { states[i] = $0 })
        }
        let reader = QEVMStreamReader(
            source: MemorySource(bytes), machineType: "fuzz-1.0",
            ramBlocks: [RAMBlock(idstr: "fuzz.ram", memory: memory)], entries: entries)
        if let pending = try? reader.read() { pending.commit() }
    }

    /// A valid stream for the fuzz machine: the seed corpus starts from it.
    public static func seedStream() -> [UInt8] {
        let pageSize = QEMUFileFormat.targetPageSize
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 * pageSize, alignment: pageSize)
        defer { memory.deallocate() }
        for i in 0..<memory.count { memory[i] = i < 2 * pageSize ? UInt8(i % 255 + 1) : 0 }
        var state = DeviceState()
        state.enabled = true
        state.depth = 32
        state.data = [1, 2, 3]
        state.length = 3
        let sink = MemorySink()
        let writer = QEVMStreamWriter(sink: sink)
        let blocks = [RAMBlock(idstr: "fuzz.ram", memory: memory)]
        do {
            try writer.writeHeader(machineType: "fuzz-1.0")
            try writer.beginRAM(blocks)
            try writer.endRAM(RAMPage.all(in: blocks))
            for i in 0..<2 {
                let copy = state
                try writer.writeDevice(
                    SaveStateEntry(
                        instanceID: UInt32(i), description: device,
                        get: { copy }, set: { _ in }))
            }
            try writer.finish()
        } catch {
            return []
        }
        return sink.bytes
    }
}
