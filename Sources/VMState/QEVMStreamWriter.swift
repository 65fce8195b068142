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

    private func putSectionHeader(_ type: QEMUVMSectionType, id: UInt32, name: String, instanceID: UInt32,
                                  versionID: UInt32) throws {
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
            throw VMStateError.ramLengthMismatch(block: block.idstr, incoming: UInt64(block.memory.count),
                                                 local: UInt64(block.pageCount * QEMUFileFormat.targetPageSize))
        }
        ramBlocks = blocks
        let id = allocateSectionID()
        ramSectionID = id
        try putSectionHeader(.sectionStart, id: id, name: QEMUFileFormat.ramSectionName, instanceID: 0,
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

    /// One SECTION_PART with the given pages (the dirty set of one iteration).
    public func writeRAMIteration<Pages: Sequence>(_ pages: Pages) throws where Pages.Element == RAMPage {
        try writeRAMSection(.sectionPart, pages)
    }

    /// The final SECTION_END with the pages still dirty when the guest stopped.
    public func endRAM<Pages: Sequence>(_ pages: Pages) throws where Pages.Element == RAMPage {
        try writeRAMSection(.sectionEnd, pages)
        ramEnded = true
    }

    private func writeRAMSection<Pages: Sequence>(_ type: QEMUVMSectionType, _ pages: Pages) throws
    where Pages.Element == RAMPage {
        guard let id = ramSectionID, !ramEnded else {
            preconditionFailure("RAM iteration outside beginRAM … endRAM")
        }
        let before = file.bytesWritten
        try file.putByte(type.rawValue)
        try file.putBE32(id)
        var lastBlock = -1
        let pageSize = QEMUFileFormat.targetPageSize
        for page in pages {
            guard ramBlocks.indices.contains(page.block), page.index >= 0,
                  page.index < ramBlocks[page.block].pageCount else {
                throw VMStateError.ramOffsetOutOfRange(block: "#\(page.block)", offset: UInt64(max(page.index, 0)),
                                                       length: 0)
            }
            let block = ramBlocks[page.block]
            let offset = page.index * pageSize
            let bytes = UnsafeRawBufferPointer(rebasing: block.memory[offset..<(offset + pageSize)])
            let isZero = bytes.isAllZero()
            var flags: RAMSaveFlags = isZero ? .zero : .page
            // The first page of each section names its block, so a section can be read alone.
            if page.block == lastBlock { flags.insert(.continue) }
            try file.putBE64(UInt64(offset) | flags.rawValue)
            if page.block != lastBlock { try file.putName(block.idstr) }
            lastBlock = page.block
            if isZero {
                try file.putByte(0)
                ramStats.duplicatePages += 1
            } else {
                try file.put(bytes)
                ramStats.normalPages += 1
            }
        }
        try file.putBE64(RAMSaveFlags.eos.rawValue)
        try putFooter(id)
        ramStats.bytes += file.bytesWritten - before
    }

    // MARK: Devices

    /// One SECTION_FULL in VMState encoding; its VMDESCRIPTION entry is kept for `finish`.
    public func writeDevice(_ entry: SaveStateEntry) throws {
        let id = allocateSectionID()
        let description = entry.description
        try putSectionHeader(.sectionFull, id: id, name: entry.idstr, instanceID: entry.instanceID,
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
