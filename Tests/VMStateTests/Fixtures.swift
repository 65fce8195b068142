// Test devices: a UART-like state using every field kind, and helpers that save
// and load through real streams.
import VMState

struct Fifo: Equatable, Sendable {
    var head: UInt32 = 0
    var num: UInt32 = 0
    var subFlag: UInt8 = 0

    static let vmstate = VMStateDescription<Fifo>(
        name: "fifo8", versionID: 1, minimumVersionID: 1,
        fields: [.uint32(\.head), .uint32(\.num)],
        subsections: [
            .init(
                VMStateDescription(name: "fifo8/flag", versionID: 1, minimumVersionID: 1, fields: [.uint8(\.subFlag)]),
                needed: { $0.subFlag != 0 })
        ],
        preLoad: { $0.subFlag = 0 })
}

struct Everything: Equatable, Sendable {
    var u8: UInt8 = 0
    var u16: UInt16 = 0
    var u32: UInt32 = 0
    var u64: UInt64 = 0
    var i32: Int32 = 0
    var i64: Int64 = 0
    var flag = false
    var buffer = [UInt8](repeating: 0, count: 8)
    var bytes8 = [UInt8](repeating: 0, count: 3)
    var words16 = [UInt16](repeating: 0, count: 2)
    var words32 = [UInt32](repeating: 0, count: 2)
    var regs = [UInt64](repeating: 0, count: 4)
    var signed32 = [Int32](repeating: 0, count: 2)
    var signed64 = [Int64](repeating: 0, count: 2)
    var dataLength: UInt32 = 0
    var data: [UInt8] = []
    var fifo = Fifo()
    var fifos = [Fifo(), Fifo()]
    var late: UInt32 = 0  // arrives in version 2
    var gated: UInt16 = 0  // only when `flag`
    var fifoDepth: UInt32 = 16  // subsection, only when not the default

    static let maximumData = 64

    static let vmstate = VMStateDescription<Everything>(
        name: "everything", versionID: 2, minimumVersionID: 1,
        fields: [
            .uint8(\.u8), .uint16(\.u16), .uint32(\.u32), .uint64(\.u64), .int32(\.i32), .int64(\.i64),
            .bool(\.flag), .bytes(\.buffer, count: 8), .uint8Array(\.bytes8, count: 3),
            .uint16Array(\.words16, count: 2), .uint32Array(\.words32, count: 2), .uint64Array(\.regs, count: 4),
            .int32Array(\.signed32, count: 2), .int64Array(\.signed64, count: 2),
            .uint32(\.dataLength), .vbuffer(\.data, length: \.dataLength, maximum: maximumData),
            .nested(\.fifo, Fifo.vmstate), .nestedArray(\.fifos, count: 2, Fifo.vmstate),
            .unused(4),
            .uint32(\.late, since: 2),
            .uint16(\.gated, exists: { state, _ in state.flag }),
        ],
        subsections: [
            .init(
                VMStateDescription(
                    name: "everything/fifo-depth", versionID: 1, minimumVersionID: 1,
                    fields: [.uint32(\.fifoDepth)],
                    postLoad: { state, _ in
                        guard state.fifoDepth >= 1 && state.fifoDepth <= 256 else {
                            throw TestError.badDepth(state.fifoDepth)
                        }
                    }),
                needed: { $0.fifoDepth != 16 })
        ],
        preLoad: { $0.fifoDepth = 16 })

    static var sample: Everything {
        var s = Everything()
        s.u8 = 0xa1; s.u16 = 0xb2c3; s.u32 = 0xd4e5_f607; s.u64 = 0x0123_4567_89ab_cdef
        s.i32 = -2; s.i64 = -3; s.flag = true
        s.buffer = [1, 2, 3, 4, 5, 6, 7, 8]; s.bytes8 = [9, 10, 11]; s.words16 = [0x1234, 0x5678]
        s.words32 = [0xdead_beef, 1]; s.regs = [1, 2, 3, 0xffff_ffff_ffff_ffff]; s.signed32 = [-1, 1]
        s.signed64 = [.min, .max]; s.dataLength = 3; s.data = [0x61, 0x62, 0x63]
        s.fifo = Fifo(head: 1, num: 2, subFlag: 7); s.fifos = [Fifo(head: 3, num: 4), Fifo(head: 5, num: 6, subFlag: 1)]
        s.late = 42; s.gated = 0x99; s.fifoDepth = 64
        return s
    }
}

enum TestError: Error, Equatable { case badDepth(UInt32) }

/// Saves `state` with `description` into bare VMState bytes (no stream framing).
func encode<S>(_ state: S, _ description: VMStateDescription<S>) throws -> (bytes: [UInt8], json: JSONValue) {
    let sink = MemorySink()
    let out = QEMUFileWriter(sink: sink)
    let json = try description.save(state, to: out)
    try out.flush()
    return (sink.bytes, json)
}

/// Loads bare VMState bytes into a copy of `initial`; checks every byte was consumed.
func decode<S>(_ bytes: [UInt8], _ description: VMStateDescription<S>, into initial: S, versionID: Int) throws -> S {
    let input = QEMUFileReader(source: MemorySource(bytes))
    var state = initial
    try description.load(&state, from: input, versionID: versionID)
    guard try input.atEnd() else { throw VMStateError.invalidValue(device: "test", version: versionID, field: "", reason: "trailing bytes") }
    return state
}

/// A RAM block backed by its own allocation, freed by the test.
final class TestRAM {
    let memory: UnsafeMutableRawBufferPointer
    init(pages: Int, fill: (Int) -> UInt8 = { _ in 0 }) {
        memory = .allocate(byteCount: pages * QEMUFileFormat.targetPageSize, alignment: 4096)
        for i in 0..<memory.count { memory[i] = fill(i) }
    }
    deinit { memory.deallocate() }
    func block(_ name: String = "test.ram") -> RAMBlock { RAMBlock(idstr: name, memory: memory) }
    var bytes: [UInt8] { Array(memory) }
}

/// Holds a device state in a box, as an emulator's device object would.
final class Box<S> {
    var state: S
    init(_ state: S) { self.state = state }
    func entry(_ description: VMStateDescription<S>, instanceID: UInt32 = 0, idstr: String? = nil) -> SaveStateEntry {
        SaveStateEntry(
            idstr: idstr, instanceID: instanceID, description: description,
            get: { self.state }, set: { self.state = $0 })
    }
}

/// A complete stream: header, RAM (all pages at once), devices, EOF, VMDESCRIPTION.
func writeStream(machine: String = "test-1.0", ram: [RAMBlock], entries: [SaveStateEntry]) throws -> [UInt8] {
    let sink = MemorySink()
    let writer = QEVMStreamWriter(sink: sink)
    try writer.writeHeader(machineType: machine)
    try writer.beginRAM(ram)
    try writer.endRAM(RAMPage.all(in: ram))
    for entry in entries { try writer.writeDevice(entry) }
    try writer.finish()
    return sink.bytes
}

func readStream(_ bytes: [UInt8], machine: String = "test-1.0", ram: [RAMBlock], entries: [SaveStateEntry]) throws -> PendingLoad {
    try QEVMStreamReader(source: MemorySource(bytes), machineType: machine, ramBlocks: ram, entries: entries).read()
}

/// The error a throwing call ends in, for matching exact cases.
func error<T>(_ body: () throws -> T) -> VMStateError? {
    do { _ = try body(); return nil } catch let e as VMStateError { return e } catch { return nil }
}
