// A flattened device tree writer (Devicetree Specification v0.4, ch. 5
// "Flattened Devicetree (DTB) Format"): header, empty memory reservation
// block, structure block, strings block; all integers big-endian.

struct FDTBuilder {
    private static let magic: UInt32 = 0xd00d_feed
    private static let beginNode: UInt32 = 1, endNode: UInt32 = 2, prop: UInt32 = 3, end: UInt32 = 9
    private static let headerSize = 40

    private var structure: [UInt8] = []
    private var strings: [UInt8] = []
    private var stringOffsets: [String: Int] = [:]
    private var depth = 0

    private mutating func u32(_ v: UInt32) {
        structure += [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)]
    }
    private mutating func pad() {
        while structure.count % 4 != 0 { structure.append(0) }
    }

    mutating func beginNode(_ name: String) {
        u32(FDTBuilder.beginNode)
        structure += Array(name.utf8) + [0]
        pad()
        depth += 1
    }

    mutating func endNode() {
        precondition(depth > 0, "unbalanced device tree node")
        u32(FDTBuilder.endNode)
        depth -= 1
    }

    mutating func property(_ name: String, bytes: [UInt8]) {
        let offset: Int
        if let known = stringOffsets[name] {
            offset = known
        } else {
            offset = strings.count
            strings += Array(name.utf8) + [0]
            stringOffsets[name] = offset
        }
        u32(FDTBuilder.prop)
        u32(UInt32(bytes.count))
        u32(UInt32(offset))
        structure += bytes
        pad()
    }

    mutating func property(_ name: String) { property(name, bytes: []) }

    mutating func property(_ name: String, string: String) {
        property(name, bytes: Array(string.utf8) + [0])
    }

    /// A string list ("a\0b\0").
    mutating func property(_ name: String, strings list: [String]) {
        property(name, bytes: list.flatMap { Array($0.utf8) + [0] })
    }

    mutating func property(_ name: String, cells: [UInt32]) {
        property(name, bytes: cells.flatMap { [UInt8($0 >> 24), UInt8(($0 >> 16) & 0xff), UInt8(($0 >> 8) & 0xff), UInt8($0 & 0xff)] })
    }

    /// A `reg` entry in the 2-cell address / 2-cell size convention.
    mutating func property(_ name: String, region: MemoryRegion) {
        property(
            name,
            cells: [
                UInt32(region.base >> 32), UInt32(region.base & 0xffff_ffff),
                UInt32(region.size >> 32), UInt32(region.size & 0xffff_ffff),
            ])
    }

    func finish(bootCPU: UInt32 = 0) -> [UInt8] {
        precondition(depth == 0, "unbalanced device tree node")
        var body = structure
        let endToken = FDTBuilder.end
        body += [UInt8(endToken >> 24), 0, 0, UInt8(endToken & 0xff)]
        let reserveOffset = FDTBuilder.headerSize
        let reserveMap = [UInt8](repeating: 0, count: 16)  // terminating {0, 0}
        let structOffset = reserveOffset + reserveMap.count
        let stringsOffset = structOffset + body.count
        let total = stringsOffset + strings.count
        var out: [UInt8] = []
        func put(_ v: UInt32) { out += [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)] }
        put(FDTBuilder.magic)
        put(UInt32(total))
        put(UInt32(structOffset))
        put(UInt32(stringsOffset))
        put(UInt32(reserveOffset))
        put(17)  // version
        put(16)  // last_comp_version
        put(bootCPU)
        put(UInt32(strings.count))
        put(UInt32(body.count))
        out += reserveMap
        out += body
        out += strings
        return out
    }
}
