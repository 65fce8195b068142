import Testing

@testable import PanelCore
@testable import PanelHTTP

/// The console ring as the long poll reads it.
struct ConsoleBufferTests {
    /// A character whose bytes arrive in two writes comes out whole, not as two U+FFFD.
    @Test func aSplitCharacterWaitsForItsLastByte() {
        let console = ConsoleBuffer()
        let euro = Array("€".utf8)
        console.append(Array("ab".utf8) + euro.prefix(2))
        let first = console.read(since: 0)
        #expect(first.data == "ab" && first.next == 2)
        console.append([euro[2]])
        let second = console.read(since: first.next)
        #expect(second.data == "€" && second.next == 5)
    }

    @Test func completePrefixes() {
        #expect(ConsoleBuffer.completeUTF8Prefix([]) == 0)
        #expect(ConsoleBuffer.completeUTF8Prefix(Array("a€😀".utf8)) == 8)
        #expect(ConsoleBuffer.completeUTF8Prefix(Array("a".utf8) + Array("😀".utf8).prefix(3)) == 1)
        #expect(ConsoleBuffer.completeUTF8Prefix([0x80, 0x80, 0x80, 0x80, 0x80]) == 5, "garbage is passed on as it is")
    }
}
