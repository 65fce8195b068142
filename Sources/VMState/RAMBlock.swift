// Guest RAM as the stream sees it: named blocks (QEMU's RAMBlock idstr) whose
// memory stays where the guest has it. Pages are read from and written to it
// directly; the stream never holds a second copy of guest RAM.
#if canImport(Glibc)
    import Glibc
#endif

public struct RAMBlock {
    /// QEMU's RAMBlock idstr, e.g. "riscv_virt_board.ram".
    public let idstr: String
    public let memory: UnsafeMutableRawBufferPointer

    public init(idstr: String, memory: UnsafeMutableRawBufferPointer) {
        self.idstr = idstr
        self.memory = memory
    }

    /// Whole 4 KiB pages; a block's length must be page aligned to migrate.
    public var pageCount: Int { memory.count / QEMUFileFormat.targetPageSize }

    /// Has the host back `range` (byte offsets, page aligned) with memory now, in one call
    /// (MADV_POPULATE_WRITE, Linux 5.14): a load that is about to fill those pages then pays
    /// no page fault per page. False where the host cannot; the pages then fault in as written.
    func populate(_ range: Range<Int>) -> Bool {
        #if os(Linux)
            return madvise(memory.baseAddress! + range.lowerBound, range.count, MADV_POPULATE_WRITE) == 0
        #else
            return false
        #endif
    }
}

/// One 4 KiB page: which block, which page in it.
public struct RAMPage: Hashable, Sendable {
    public let block: Int
    public let index: Int
    public init(block: Int, index: Int) {
        self.block = block
        self.index = index
    }

    /// Every page of every block, in order: the first pass of a migration or a snapshot.
    /// Lazy, so a large guest does not need an array of all its pages.
    public static func all(in blocks: [RAMBlock]) -> some Sequence<RAMPage> {
        let counts = blocks.map(\.pageCount)
        return counts.indices.lazy.flatMap { b in (0..<counts[b]).lazy.map { RAMPage(block: b, index: $0) } }
    }
}

/// Counters with QEMU's query-migrate meanings: `normalPages` travelled whole,
/// `duplicatePages` were zero pages sent as a marker, `bytes` is what went on the wire.
public struct RAMTransferStats: Equatable, Sendable {
    public var normalPages: UInt64 = 0
    public var duplicatePages: UInt64 = 0
    public var bytes: UInt64 = 0
    public init() {}
}

extension UnsafeRawBufferPointer {
    /// True when every byte is zero (QEMU's buffer_is_zero), eight bytes at a time.
    func isAllZero() -> Bool {
        var i = 0
        let n = count
        // 64 bytes a step, OR-ed together: one branch per cache line, and the compiler vectorises it.
        // Most of a guest's RAM is zero at first, so this scan is most of a first pre-copy pass.
        while i + 64 <= n {
            var acc: UInt64 = 0
            for k in stride(from: 0, to: 64, by: 8) { acc |= loadUnaligned(fromByteOffset: i + k, as: UInt64.self) }
            if acc != 0 { return false }
            i += 64
        }
        while i + 8 <= n {
            if loadUnaligned(fromByteOffset: i, as: UInt64.self) != 0 { return false }
            i += 8
        }
        while i < n {
            if self[i] != 0 { return false }
            i += 1
        }
        return true
    }
}
