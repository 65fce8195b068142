// Compressed decoding: each RV64C encoding must decode to the same
// operation as its 32-bit expansion (pairs assembled by GNU as).
import Testing

@testable import RISCV

@Suite struct CompressedDecoderTests {
    static let pairs: [(UInt16, UInt32)] = [
        (0x1fe8, 0x3fc10513), (0x5e6c, 0x07c62583), (0x7f74, 0x0f873683), (0xc03c, 0x04f42023),
        (0xe504, 0x00953423), (0x1281, 0xfe028293), (0x257d, 0x01f5051b), (0x537d, 0xfff00313),
        (0x7101, 0xe0010113), (0x617d, 0x1f010113), (0x7385, 0xfffe13b7), (0x697d, 0x0001f937),
        (0x917d, 0x03f55513), (0x8585, 0x4015d593), (0x9a3d, 0xfef67613), (0x8e99, 0x40e686b3),
        (0x8fa1, 0x0087c7b3), (0x8cc9, 0x00a4e4b3), (0x8df1, 0x00c5f5b3), (0x9e99, 0x40e686bb),
        (0x9fa1, 0x008787bb), (0x0e46, 0x011e1e13), (0x5efe, 0x0fc12e83), (0x7f7e, 0x1f813f03),
        (0x8082, 0x00008067), (0x8fce, 0x00098f93), (0x9a02, 0x000a00e7), (0x9ada, 0x016a8ab3),
        (0xdfde, 0x0f712e23), (0xffe2, 0x1f813c23), (0xd101, 0xf00500e3), (0xecfd, 0x0e049f63),
        (0xb001, 0x801ff06f), (0xaffd, 0x7fe0006f), (0x9002, 0x00100073),
    ]

    @Test(arguments: pairs)
    func expandsLikeItsFullForm(compressed: UInt16, full: UInt32) {
        let c = Decoder.decodeCompressed(compressed)
        let f = Decoder.decode(full)
        #expect(c.kind == f.kind, "0x\(String(compressed, radix: 16))")
        #expect(c.rd == f.rd && c.rs1 == f.rs1 && c.rs2 == f.rs2 && c.imm == f.imm, "0x\(String(compressed, radix: 16))")
        #expect(c.len == 2 && f.len == 4)
    }

    @Test(arguments: [
        UInt16(0x0000), 0x2000 /* c.fld */, 0x4002 /* c.lwsp x0 */, 0x8002 /* c.jr x0 */,
        0x6101 /* c.addi16sp 0 */, 0x6281 /* c.lui 0 */, 0x9c41 /* reserved c.subw-space */,
    ])
    func reservedEncodingsAreIllegal(bits: UInt16) {
        #expect(Decoder.decodeCompressed(bits).kind == .illegal)
    }

    @Test func writesToX0BecomeHarmless() {
        #expect(Decoder.decode(Asm.addi(0, 1, 5)).kind == .nop)
        #expect(Decoder.decode(Asm.ld(0, 1, 0)).kind == .loadDiscard)
        #expect(Decoder.decode(0x0000_006f).kind == .j)  // jal x0
    }
}
