/// The request target as the client sent it, checked before libmicrohttpd decodes it.
///
/// libmicrohttpd percent-decodes the path in place and hands it over as a C string, so a `%00`
/// cut the path short (`DELETE /guests/<id>%00/snapshots/x` reached `DELETE /guests/<id>`), and a
/// decoded `/` moves segment boundaries. No route holds such bytes, so a target whose decoded path
/// holds one is refused before routing (400 `bad_path`): NUL and other control characters, an
/// encoded `/` or `\`, a `\`, a `.` or `..` segment, or bytes that are not UTF-8.
enum RequestTarget {
    enum Verdict {
        case routable
        case badPath
        /// The query holds a `%00`, which would cut a parameter the same way.
        case badQuery
    }

    static func check(_ target: UnsafePointer<CChar>) -> Verdict {
        target.withMemoryRebound(to: UInt8.self, capacity: 1) { check(bytes: $0) }
    }

    private static func check(bytes target: UnsafePointer<UInt8>) -> Verdict {
        var utf8 = UTF8Check()
        var segmentLength = 0
        var segmentDots = 0
        var index = 0
        func endSegment() -> Bool {
            defer { segmentLength = 0; segmentDots = 0 }
            return !(segmentLength == segmentDots && (1...2).contains(segmentLength))
        }
        while true {
            var byte = target[index]
            if byte == 0 || byte == UInt8(ascii: "?") { break }
            index += 1
            if byte == UInt8(ascii: "/") {
                guard endSegment(), utf8.isComplete else { return .badPath }
                continue
            }
            if byte == UInt8(ascii: "%"), let decoded = hexPair(target[index], target[index + 1]) {
                index += 2
                byte = decoded
                // Encoded, a separator would be data inside a segment; no route holds one.
                if byte == UInt8(ascii: "/") { return .badPath }
            }
            if byte < 0x20 || byte == 0x7F || byte == UInt8(ascii: "\\") { return .badPath }
            guard utf8.accept(byte) else { return .badPath }
            segmentLength += 1
            if byte == UInt8(ascii: ".") { segmentDots += 1 }
        }
        guard endSegment(), utf8.isComplete else { return .badPath }
        guard target[index] == UInt8(ascii: "?") else { return .routable }
        index += 1
        while target[index] != 0 {
            if target[index] == UInt8(ascii: "%"), target[index + 1] == UInt8(ascii: "0"), target[index + 2] == UInt8(ascii: "0") {
                return .badQuery
            }
            index += 1
        }
        return .routable
    }

    /// Two hex digits as libmicrohttpd decodes them; nil leaves the `%` as it is (so does it).
    /// Reading `second` is safe when `first` is a digit: then `first` was not the terminating NUL.
    private static func hexPair(_ first: UInt8, _ second: @autoclosure () -> UInt8) -> UInt8? {
        guard let high = hexValue(first), let low = hexValue(second()) else { return nil }
        return high << 4 | low
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Well-formed UTF-8 byte by byte (Unicode 15 §3.9, table 3-7): no overlong forms, no
    /// surrogates, nothing past U+10FFFF.
    private struct UTF8Check {
        var pending = 0
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF

        var isComplete: Bool { pending == 0 }

        mutating func accept(_ byte: UInt8) -> Bool {
            if pending > 0 {
                guard byte >= lower && byte <= upper else { return false }
                pending -= 1
                lower = 0x80
                upper = 0xBF
                return true
            }
            switch byte {
            case 0x00...0x7F: return true
            case 0xC2...0xDF: pending = 1
            case 0xE0: pending = 2; lower = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: pending = 2
            case 0xED: pending = 2; upper = 0x9F
            case 0xF0: pending = 3; lower = 0x90
            case 0xF1...0xF3: pending = 3
            case 0xF4: pending = 3; upper = 0x8F
            default: return false
            }
            return true
        }
    }
}
