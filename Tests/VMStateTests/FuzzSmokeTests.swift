// A quick, deterministic stand-in for the libFuzzer run: mutations of a valid
// stream through VMStateFuzz.consume must all return (errors are fine).
import TestBoards
import Testing

@testable import VMState

@Suite struct FuzzSmokeTests {
    @Test func seedStreamLoads() throws {
        let seed = VMStateFuzz.seedStream()
        #expect(!seed.isEmpty)
        VMStateFuzz.consume(seed)
    }

    @Test func mutatedStreamsNeverCrash() {
        let seed = VMStateFuzz.seedStream()
        var rng = SplitMix64(seed: 0x5145_564d)
        for _ in 0..<3000 {
            var bytes = seed
            switch rng.next() % 4 {
            case 0:  // flip a few bytes
                for _ in 0..<(1 + rng.next() % 4) { bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            case 1:  // cut
                bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count))))
            case 2:  // lengths and counts to extremes
                let i = Int(rng.next() % UInt64(bytes.count - 4))
                bytes.replaceSubrange(i..<(i + 4), with: [0xff, 0xff, 0xff, 0xff])
            default:  // splice a chunk elsewhere
                let a = Int(rng.next() % UInt64(bytes.count))
                let n = Int(rng.next() % 64)
                let b = Int(rng.next() % UInt64(bytes.count))
                bytes.insert(contentsOf: bytes[a..<min(a + n, bytes.count)], at: b)
            }
            VMStateFuzz.consume(bytes)
        }
        VMStateFuzz.consume([])
        VMStateFuzz.consume([0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 3, 7, 0xff, 0xff, 0xff, 0xff])
    }
}
