// Writes a QEVM stream exactly as QEMU's savevm.c does for precopy: header,
// configuration, iterative "ram" sections, one FULL section per device, EOF,
// then the VMDESCRIPTION JSON that QEMU's analyze-migration.py needs.
// The same writer serves snapshot files and migration sockets.

public final class QEVMStreamWriter {
    public let file: QEMUFileWriter
    private var nextSectionID: UInt32 = 0
    private var ramSectionID: UInt32?
    private var ramBlocks: [RAMBlock] = []
    private var ramEnded = false
    private var deviceDescriptions: [JSONValue] = []
    /// RAM counters so far (query-migrate's ram transferred / duplicate / normal).
    public private(set) var ramStats = RAMTransferStats()

    public init(sink: ByteSink) {
        file = QEMUFileWriter(sink: sink)
    }

    /// Magic, version and the configuration section with the canonical machine type.
    public func writeHeader(machineType: String) throws {
        try file.putBE32(QEMUFileFormat.magic)
        try file.putBE32(QEMUFileFormat.version)
        // QEMU_VM_CONFIGURATION then vmstate_configuration: be32 length, the name, no NUL.
        try file.putByte(QEMUVMSectionType.configuration.rawValue)
        let name = Array(machineType.utf8)
        try file.putBE32(UInt32(name.count))
        try file.put(name)
    }

    private func allocateSectionID() -> UInt32 {
        defer { nextSectionID += 1 }
        return nextSectionID
    }

    private func putSectionHeader(
        _ type: QEMUVMSectionType, id: UInt32, name: String, instanceID: UInt32,
        versionID: UInt32
    ) throws {
        try file.putByte(type.rawValue)
        try file.putBE32(id)
        try file.putName(name)
        try file.putBE32(instanceID)
        try file.putBE32(versionID)
    }

    private func putFooter(_ id: UInt32) throws {
        try file.putByte(QEMUVMSectionType.sectionFooter.rawValue)
        try file.putBE32(id)
    }

    // MARK: RAM (migration/ram.c: ram_save_setup, ram_save_iterate, ram_save_complete)

    /// SECTION_START of "ram": the total size with MEM_SIZE, each block's idstr and length, EOS.
    public func beginRAM(_ blocks: [RAMBlock]) throws {
        precondition(ramSectionID == nil, "beginRAM called twice")
        for block in blocks where block.memory.count % QEMUFileFormat.targetPageSize != 0 {
            throw VMStateError.ramLengthMismatch(
                block: block.idstr, incoming: UInt64(block.memory.count),
                local: UInt64(block.pageCount * QEMUFileFormat.targetPageSize))
        }
        ramBlocks = blocks
        let id = allocateSectionID()
        ramSectionID = id
        try putSectionHeader(
            .sectionStart, id: id, name: QEMUFileFormat.ramSectionName, instanceID: 0,
            versionID: QEMUFileFormat.ramSectionVersion)
        let total = blocks.reduce(UInt64(0)) { $0 + UInt64($1.memory.count) }
        try file.putBE64(total | RAMSaveFlags.memSize.rawValue)
        for block in blocks {
            try file.putName(block.idstr)
            try file.putBE64(UInt64(block.memory.count))
        }
        try file.putBE64(RAMSaveFlags.eos.rawValue)
        try putFooter(id)
    }

    /// One SECTION_PART with the given pages (the dirty set of one iteration), in page order.
    public func writeRAMIteration<Pages: Sequence>(_ pages: Pages) throws where Pages.Element == RAMPage {
        try writeRAMIteration(try bitmap(of: pages))
    }

    /// One SECTION_PART with the pages of `pages` inside `range` (numbered across the blocks).
    public func writeRAMIteration(_ pages: RAMPageBitmap, in range: Range<Int>? = nil) throws {
        try writeRAMSection(.sectionPart, pages, in: range ?? 0..<pages.pageCount)
    }

    /// The final SECTION_END with the pages still dirty when the guest stopped.
    public func endRAM<Pages: Sequence>(_ pages: Pages) throws where Pages.Element == RAMPage {
        try endRAM(try bitmap(of: pages))
    }

    public func endRAM(_ pages: RAMPageBitmap) throws {
        try writeRAMSection(.sectionEnd, pages, in: 0..<pages.pageCount)
        ramEnded = true
    }

    /// Pages of all blocks, numbered in block order (`RAMPageBitmap`).
    public var ramPageCount: Int { ramBlocks.reduce(0) { $0 + $1.pageCount } }

    private func bitmap<Pages: Sequence>(of pages: Pages) throws -> RAMPageBitmap where Pages.Element == RAMPage {
        var bitmap = RAMPageBitmap(pageCount: ramPageCount)
        var firstPage = [0]
        for block in ramBlocks { firstPage.append(firstPage.last! + block.pageCount) }
        for page in pages {
            guard ramBlocks.indices.contains(page.block), page.index >= 0, page.index < ramBlocks[page.block].pageCount else {
                throw VMStateError.ramOffsetOutOfRange(block: "#\(page.block)", offset: UInt64(max(page.index, 0)), length: 0)
            }
            bitmap.insert(firstPage[page.block] + page.index)
        }
        return bitmap
    }

    private func writeRAMSection(_ type: QEMUVMSectionType, _ pages: RAMPageBitmap, in range: Range<Int>) throws {
        guard let id = ramSectionID, !ramEnded else {
            preconditionFailure("RAM iteration outside beginRAM … endRAM")
        }
        precondition(pages.pageCount == ramPageCount, "a bitmap of \(pages.pageCount) pages for \(ramPageCount)")
        let before = file.bytesWritten
        try file.putByte(type.rawValue)
        try file.putBE32(id)
        var lastBlock = -1
        var blockStart = 0
        for (index, block) in ramBlocks.enumerated() {
            let blockPages = blockStart..<(blockStart + block.pageCount)
            try pages.forEachRun(in: blockPages.clamped(to: range)) { run in
                // The first page of each section names its block, so a section can be read alone.
                try writePages(
                    (run.lowerBound - blockStart)..<(run.upperBound - blockStart), of: block,
                    namingBlock: index != lastBlock)
                lastBlock = index
            }
            blockStart += block.pageCount
        }
        try file.putBE64(RAMSaveFlags.eos.rawValue)
        try putFooter(id)
        ramStats.bytes += file.bytesWritten - before
    }

    /// One record per page (ram.c's save_normal_page / save_zero_page): a zero page is its
    /// header and one fill byte; any other goes from guest memory, uncopied, at the next flush.
    private func writePages(_ run: Range<Int>, of block: RAMBlock, namingBlock: Bool) throws {
        let pageSize = QEMUFileFormat.targetPageSize
        let base = UnsafeRawPointer(block.memory.baseAddress!)
        var naming = namingBlock
        for index in run {
            let offset = index * pageSize
            let bytes = UnsafeRawBufferPointer(start: base + offset, count: pageSize)
            let isZero = bytes.isAllZero()
            var flags: RAMSaveFlags = isZero ? .zero : .page
            if !naming { flags.insert(.continue) }
            try file.putBE64(UInt64(offset) | flags.rawValue)
            if naming {
                try file.putName(block.idstr)
                naming = false
            }
            if isZero {
                try file.putByte(0)
                ramStats.duplicatePages += 1
            } else {
                try file.putReferenced(bytes)
                ramStats.normalPages += 1
            }
        }
    }

    // MARK: Devices

    /// One SECTION_FULL in VMState encoding; its VMDESCRIPTION entry is kept for `finish`.
    public func writeDevice(_ entry: SaveStateEntry) throws {
        let id = allocateSectionID()
        let description = entry.description
        try putSectionHeader(
            .sectionFull, id: id, name: entry.idstr, instanceID: entry.instanceID,
            versionID: UInt32(truncatingIfNeeded: description.versionID))
        let saved = try description.save(entry.getState(), to: file)
        try putFooter(id)
        var device: [(String, JSONValue)] = [
            ("name", .string(entry.idstr)), ("instance_id", .int(Int64(entry.instanceID))),
        ]
        device += saved.objectValue ?? []
        deviceDescriptions.append(.object(device))
    }

    // MARK: End

    /// QEMU_VM_EOF, then QEMU_VM_VMDESCRIPTION with the JSON of what was written; flushes.
    public func finish() throws {
        try file.putByte(QEMUVMSectionType.eof.rawValue)
        let json = JSONValue.object([
            ("page_size", .int(Int64(QEMUFileFormat.targetPageSize))), ("devices", .array(deviceDescriptions)),
        ])
        var text = Array(json.serialized().utf8)
        // analyze-migration.py finds the JSON as the first '{' after the last NUL byte;
        // a length byte equal to '{' would fool it, so pad with blanks until none is.
        while withUnsafeBytes(of: UInt32(text.count).bigEndian, { $0.contains(UInt8(ascii: "{")) }) {
            text.append(UInt8(ascii: " "))
        }
        try file.putByte(QEMUVMSectionType.vmDescription.rawValue)
        try file.putBE32(UInt32(text.count))
        try file.put(text)
        try file.flush()
    }
}
