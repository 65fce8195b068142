// Property-based round trips: any state survives save → stream → load unchanged,
// whichever optional parts (field_exists, subsections) it happens to need.
import PropertyBased
import Testing

@testable import VMState

@Suite struct PropertyRoundTripTests {
    @Test func smallStatesRoundTrip() async {
        await propertyCheck(
            input: Gen.uint8(), Gen.uint16(), Gen.uint64(), Gen.int32(), Gen.bool,
            Gen.uint32(in: 1...40)
        ) { a, b, d, e, f, depth in
            let state = Small(a: a, b: b, c: UInt32(truncatingIfNeeded: d >> 7), d: d, e: e, f: f, depth: depth)
            let (bytes, _) = try encode(state, smallDescription)
            #expect(try decode(bytes, smallDescription, into: Small(), versionID: 1) == state)
        }
    }

    @Test func everythingRoundTripsThroughAStream() async {
        await propertyCheck(
            count: 60, input: Gen.uint64(), Gen.uint8().array(of: 0...Everything.maximumData),
            Gen.bool, Gen.uint32(in: 1...256), Gen.int64(), Gen.uint8(in: 1...255).array(of: 4096)
        ) {
            word, data, flag, depth, signed, page in
            var state = Everything.sample
            state.u64 = word
            state.regs = [word, ~word, word >> 3, 0]
            state.data = data
            state.dataLength = UInt32(data.count)
            state.flag = flag
            state.gated = flag ? UInt16(truncatingIfNeeded: word) : 0
            state.fifoDepth = depth
            state.i64 = signed
            state.signed64 = [signed, -signed / 2]
            state.fifo.subFlag = UInt8(truncatingIfNeeded: word)
            let ram = TestRAM(pages: 2) { $0 < 4096 ? page[$0] : 0 }
            let source = Box(state)
            let bytes = try writeStream(ram: [ram.block()], entries: [source.entry(Everything.vmstate)])
            let destinationRAM = TestRAM(pages: 2) { _ in 0x5a }
            let destination = Box(Everything())
            try readStream(bytes, ram: [destinationRAM.block()], entries: [destination.entry(Everything.vmstate)]).commit()
            #expect(destination.state == state)
            #expect(destinationRAM.bytes == ram.bytes)
        }
    }
}
