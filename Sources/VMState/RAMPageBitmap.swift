// A set of guest RAM pages as one bit per 4 KiB page, the shape of QEMU's dirty bitmap
// (migration/ram.c). Pre-copy keeps its passes, the pages dirtied meanwhile and the
// populated pages in these: a union is a word-wise OR, and the stream writer walks runs of
// set bits instead of per-page records, so a 1 GiB guest costs 32 KiB and a few microseconds.

/// Bit `i % 64` of word `i / 64` is page `i`. Pages are numbered across a machine's RAM blocks
/// in order: block 0's pages first, then block 1's (`RAMBlock.pageCount` each).
public struct RAMPageBitmap: Equatable, Sendable {
    public private(set) var words: [UInt64]
    public let pageCount: Int

    /// No page set.
    public init(pageCount: Int) {
        precondition(pageCount >= 0)
        self.pageCount = pageCount
        words = [UInt64](repeating: 0, count: (pageCount + 63) / 64)
    }

    /// Bits beyond `pageCount` are dropped.
    public init(words: [UInt64], pageCount: Int) {
        precondition(words.count == (pageCount + 63) / 64, "\(words.count) words for \(pageCount) pages")
        self.pageCount = pageCount
        self.words = words
        clearTail()
    }

    /// Every page.
    public static func all(pageCount: Int) -> RAMPageBitmap {
        RAMPageBitmap(words: [UInt64](repeating: ~0, count: (pageCount + 63) / 64), pageCount: pageCount)
    }

    private mutating func clearTail() {
        let extra = words.count * 64 - pageCount
        if extra > 0 { words[words.count - 1] &= ~0 >> UInt64(extra) }
    }

    public subscript(page: Int) -> Bool {
        words[page >> 6] & (1 << UInt64(page & 63)) != 0
    }

    public mutating func insert(_ page: Int) {
        precondition(page >= 0 && page < pageCount, "page \(page) outside 0..<\(pageCount)")
        words[page >> 6] |= 1 << UInt64(page & 63)
    }

    public var isEmpty: Bool { words.allSatisfy { $0 == 0 } }

    /// Pages set.
    public var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// Pages set at `page` or after it (what a pass has left once it reached `page`).
    public func count(from page: Int) -> Int {
        guard page < pageCount else { return 0 }
        let first = page >> 6
        var n = (words[first] & (~0 << UInt64(page & 63))).nonzeroBitCount
        for word in words[(first + 1)...] { n += word.nonzeroBitCount }
        return n
    }

    public mutating func formUnion(_ other: RAMPageBitmap) {
        precondition(other.pageCount == pageCount)
        for i in words.indices { words[i] |= other.words[i] }
    }

    /// Pages set in `other` that are not set here: what a union with it would add.
    public func countAdded(by other: RAMPageBitmap) -> Int {
        precondition(other.pageCount == pageCount)
        var n = 0
        for i in words.indices { n += (other.words[i] & ~words[i]).nonzeroBitCount }
        return n
    }

    /// Adds the pages of `other` at `page` or after it.
    public mutating func formUnion(_ other: RAMPageBitmap, from page: Int) {
        precondition(other.pageCount == pageCount)
        guard page < pageCount else { return }
        let first = max(page, 0) >> 6
        words[first] |= other.words[first] & (~0 << UInt64(max(page, 0) & 63))
        for i in (first + 1)..<words.count { words[i] |= other.words[i] }
    }

    /// Drops the pages of `other` inside `range`.
    public mutating func subtract(_ other: RAMPageBitmap, in range: Range<Int>) {
        precondition(other.pageCount == pageCount)
        other.forEachRun(in: range) { run in
            for page in run { words[page >> 6] &= ~(1 << UInt64(page & 63)) }
        }
    }

    /// Keeps only the pages at `page` or after it.
    public mutating func removeAll(before page: Int) {
        let page = min(max(page, 0), pageCount)
        let whole = page >> 6
        for i in 0..<whole { words[i] = 0 }
        if whole < words.count { words[whole] &= ~0 << UInt64(page & 63) }
    }

    public mutating func removeAll() {
        for i in words.indices { words[i] = 0 }
    }

    /// The page just past the first `limit` set pages at or after `start` (or `pageCount` when
    /// fewer are left): where a chunk of at most `limit` pages of a pass ends.
    public func end(afterSetPages limit: Int, from start: Int) -> Int {
        var left = limit
        var word = start >> 6
        guard word < words.count else { return pageCount }
        var bits = words[word] & (~0 << UInt64(start & 63))
        while true {
            let n = bits.nonzeroBitCount
            if n >= left {
                // The `left`-th set bit of this word ends the chunk.
                for _ in 1..<max(left, 1) { bits &= bits - 1 }
                return left == 0 ? start : word * 64 + bits.trailingZeroBitCount + 1
            }
            left -= n
            word += 1
            guard word < words.count else { return pageCount }
            bits = words[word]
        }
    }

    /// Calls `body` with each run of consecutive set pages inside `range`, in order.
    public func forEachRun(in range: Range<Int>, _ body: (Range<Int>) throws -> Void) rethrows {
        var page = max(range.lowerBound, 0)
        let end = min(range.upperBound, pageCount)
        while page < end {
            guard let start = nextSet(from: page, before: end) else { return }
            let stop = nextClear(from: start, before: end)
            try body(start..<stop)
            page = stop
        }
    }

    public func forEachRun(_ body: (Range<Int>) throws -> Void) rethrows {
        try forEachRun(in: 0..<pageCount, body)
    }

    /// The first set page in `page..<end`, if any.
    private func nextSet(from page: Int, before end: Int) -> Int? {
        var word = page >> 6
        var bits = words[word] & (~0 << UInt64(page & 63))
        while bits == 0 {
            word += 1
            guard word * 64 < end else { return nil }
            bits = words[word]
        }
        let found = word * 64 + bits.trailingZeroBitCount
        return found < end ? found : nil
    }

    /// The first clear page in `page..<end`, or `end`.
    private func nextClear(from page: Int, before end: Int) -> Int {
        var word = page >> 6
        var bits = ~words[word] & (~0 << UInt64(page & 63))
        while bits == 0 {
            word += 1
            guard word * 64 < end else { return end }
            bits = ~words[word]
        }
        return min(word * 64 + bits.trailingZeroBitCount, end)
    }
}
