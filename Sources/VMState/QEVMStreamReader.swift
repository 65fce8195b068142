// Reads a QEVM stream written by QEVMStreamWriter (or by QEMU, for the parts
// emupanel knows). RAM pages land directly in the caller's RAM blocks; device
// sections decode into pending copies that are handed back only once EOF has
// been read and everything validated, so a bad stream never half-applies device
// state. Any byte sequence ends in a value or a VMStateError: every length read
// from the stream is bounded before it is used.

public struct QEVMStreamLimits: Sendable {
    /// The VMDESCRIPTION JSON is skipped, not parsed; this bounds how much is skipped.
    public var maximumVMDescriptionLength = 64 << 20
    /// Machine type names in the configuration section.
    public var maximumMachineTypeLength = 256
    public init() {}
}

/// Device states decoded from a stream, not yet applied.
public struct PendingLoad {
    let states: [(entry: SaveStateEntry, state: Any)]
    public let ramStats: RAMTransferStats
    /// The machine type the stream's configuration section named.
    public let machineType: String

    /// Hands every decoded state to its device. Nothing can fail any more at this point.
    public func commit() {
        for (entry, state) in states { entry.setState(state) }
    }
}

public final class QEVMStreamReader {
    private let file: QEMUFileReader
    private let machineType: String
    private let ramBlocks: [RAMBlock]
    private let entries: [SaveStateEntry]
    private let limits: QEVMStreamLimits

    private var ramSectionID: UInt32?
    private var ramBlockListSeen = false
    private var ramEnded = false
    private var lastRAMBlock: Int?
    /// Pages the host has backed ahead of the load (`prepareRun`): a block, byte offsets in it.
    private var populatedBlock = -1
    private var populated = 0..<0
    private var canPopulate = true
    private var ramStats = RAMTransferStats()

    /// `machineType` is the local canonical name the stream must carry; `entries` are the
    /// device sections the local machine expects, every one of which must arrive.
    /// `bufferSize` bounds how far ahead a load sees RAM pages (`prepareRun`): 256 KiB is 63 pages.
    public init(
        source: ByteSource, machineType: String, ramBlocks: [RAMBlock], entries: [SaveStateEntry],
        limits: QEVMStreamLimits = QEVMStreamLimits(), bufferSize: Int = 64 << 10
    ) {
        file = QEMUFileReader(source: source, bufferSize: bufferSize)
        self.machineType = machineType
        self.ramBlocks = ramBlocks
        self.entries = entries
        self.limits = limits
    }

    /// Reads the whole stream (qemu_loadvm_state). Throws on any inconsistency.
    public func read() throws -> PendingLoad {
        let configuration = try file.readStreamHeader(maximumMachineTypeLength: limits.maximumMachineTypeLength)
        // configuration_post_load: a stream only loads into the machine type it was saved from,
        // with the same page size and no capability the local side would have to match.
        guard configuration.machineType == machineType else {
            throw VMStateError.machineTypeMismatch(received: configuration.machineType, local: machineType)
        }
        if let bits = configuration.targetPageBits, 1 << Int(min(bits, 62)) != QEMUFileFormat.targetPageSize {
            throw VMStateError.invalidValue(
                device: "configuration", version: 1, field: "target_page_bits",
                reason: "received \(bits), local is \(QEMUFileFormat.targetPageSize.trailingZeroBitCount)")
        }
        if let capability = configuration.capabilities.first {
            throw VMStateError.invalidValue(
                device: "configuration", version: 1, field: "capabilities",
                reason: "capability \(capability) is on in the stream, off here")
        }

        var pending: [(entry: SaveStateEntry, state: Any)] = []
        var loaded = Set<SectionKey>()
        sections: while true {
            switch try file.readSectionRecord() {
            case .eof:
                break sections
            case .start(let header):
                try startRAM(header)
            case .full(let header):
                let (name, instanceID) = (header.name, header.instanceID)
                guard let entry = entries.first(where: { $0.idstr == name && $0.instanceID == instanceID }) else {
                    throw VMStateError.unknownSection(name: name, instanceID: instanceID)
                }
                guard loaded.insert(SectionKey(name: name, instanceID: instanceID)).inserted else {
                    throw VMStateError.duplicateSection(name: name, instanceID: instanceID)
                }
                let state = try entry.description.load(
                    from: file, into: entry.getState(),
                    versionID: Int(header.versionID))
                try file.checkFooter(section: name, sectionID: header.sectionID)
                pending.append((entry, state))
            case .continuation(let continuation):
                try continuation.check(startedID: ramSectionID, ended: ramEnded)
                try readRAM()
                try file.checkFooter(section: QEMUFileFormat.ramSectionName, sectionID: continuation.sectionID)
                if continuation.isEnd { ramEnded = true }
            }
        }

        if !ramBlocks.isEmpty {
            guard ramSectionID != nil else { throw VMStateError.ramSectionIncomplete(reason: "no RAM section") }
            guard ramEnded else { throw VMStateError.ramSectionIncomplete(reason: "RAM section never ended") }
        }
        for entry in entries where !loaded.contains(SectionKey(name: entry.idstr, instanceID: entry.instanceID)) {
            throw VMStateError.sectionMissing(name: entry.idstr, instanceID: entry.instanceID)
        }
        try skipVMDescription()
        return PendingLoad(states: pending, ramStats: ramStats, machineType: machineType)
    }

    private struct SectionKey: Hashable {
        let name: String
        let instanceID: UInt32
    }

    // MARK: RAM (ram_load_precopy)

    private func startRAM(_ header: QEVMSectionHeader) throws {
        let (name, instanceID) = (header.name, header.instanceID)
        guard name == QEMUFileFormat.ramSectionName, instanceID == 0 else {
            if entries.contains(where: { $0.idstr == name && $0.instanceID == instanceID }) {
                throw VMStateError.ramUnexpectedIterative(name)
            }
            throw VMStateError.unknownSection(name: name, instanceID: instanceID)
        }
        guard ramSectionID == nil else { throw VMStateError.duplicateSection(name: name, instanceID: instanceID) }
        try header.checkVersion(QEMUFileFormat.ramSectionVersion)
        ramSectionID = header.sectionID
        try readRAM()
        try file.checkFooter(section: name, sectionID: header.sectionID)
    }

    private func readRAM() throws {
        while true {
            switch try file.readRAMRecord() {
            case .blockList(let totalLength):
                try readRAMBlockList(totalLength: totalLength)
            case .page(let page):
                guard ramBlockListSeen else {
                    throw VMStateError.ramSectionIncomplete(reason: "RAM page before the RAM block list")
                }
                let blockIndex = try file.readRAMBlock(for: page, previous: lastRAMBlock) { name in
                    ramBlocks.firstIndex(where: { $0.idstr == name })
                }
                lastRAMBlock = blockIndex
                let block = ramBlocks[blockIndex]
                try page.checkInside(block: block.idstr, length: UInt64(block.memory.count))
                let start = Int(page.address)
                let destination = UnsafeMutableRawBufferPointer(
                    rebasing: block.memory[start..<(start + QEMUFileFormat.targetPageSize)])
                if page.isZero {
                    try file.readZeroPageFill()
                    // The destination page may hold old data (restoring into a used guest).
                    if !UnsafeRawBufferPointer(destination).isAllZero() {
                        destination.initializeMemory(as: UInt8.self, repeating: 0)
                    }
                    ramStats.duplicatePages += 1
                } else {
                    if populatedBlock != blockIndex || !populated.contains(start) { prepareRun(at: start, of: blockIndex) }
                    file.context = page.dataContext(block: block.idstr)
                    try file.get(into: destination)
                    ramStats.normalPages += 1
                }
            case .endOfSection:
                return
            }
        }
    }

    /// Before the data of the page at `offset`: has the host back it and the pages whose records
    /// follow it, already read, in the same block and in order (a first pass is all such runs),
    /// in one call instead of a page fault each — most of a load's time in a fresh machine.
    private func prepareRun(at offset: Int, of blockIndex: Int) {
        guard canPopulate else { return }
        let block = ramBlocks[blockIndex]
        let pageSize = QEMUFileFormat.targetPageSize
        let ahead = file.buffered
        let sameBlockPage = RAMSaveFlags.page.rawValue | RAMSaveFlags.continue.rawValue
        var pages = 1
        // This page's data, then each following record: an 8-byte header and its page.
        var header = pageSize
        while header + 8 <= ahead.count, offset + (pages + 1) * pageSize <= block.memory.count {
            let word = UInt64(bigEndian: ahead.loadUnaligned(fromByteOffset: header, as: UInt64.self))
            guard word & UInt64(pageSize - 1) == sameBlockPage,
                word & ~UInt64(pageSize - 1) == UInt64(offset + pages * pageSize)
            else { break }
            pages += 1
            header += pageSize + 8
        }
        populatedBlock = blockIndex
        populated = offset..<(offset + pages * pageSize)
        canPopulate = block.populate(populated)
    }

    private func readRAMBlockList(totalLength: UInt64) throws {
        guard !ramBlockListSeen else {
            throw VMStateError.ramSectionIncomplete(reason: "RAM block list sent twice")
        }
        ramBlockListSeen = true
        var remaining = totalLength
        var announced = Set<Int>()
        // Each block can be named once, so the loop ends after at most ramBlocks.count rounds.
        while remaining > 0 {
            file.context = "RAM block list"
            let name = try file.getName("RAM block list")
            guard let index = ramBlocks.firstIndex(where: { $0.idstr == name }), !announced.contains(index) else {
                throw VMStateError.unknownRAMBlock(name)
            }
            announced.insert(index)
            let length = try file.getBE64()
            let local = UInt64(ramBlocks[index].memory.count)
            guard length == local, length <= remaining else {
                throw VMStateError.ramLengthMismatch(block: name, incoming: length, local: local)
            }
            remaining -= length
        }
        for (index, block) in ramBlocks.enumerated() where !announced.contains(index) {
            throw VMStateError.ramLengthMismatch(block: block.idstr, incoming: 0, local: UInt64(block.memory.count))
        }
    }

    // MARK: After EOF

    /// QEMU's destination reads the VMDESCRIPTION past EOF too (so tools tapping the
    /// stream see it); it is skipped in chunks, never allocated by its length.
    private func skipVMDescription() throws {
        file.context = "VM description"
        guard try !file.atEnd() else { return }
        let type = try file.getByte()
        guard type == QEMUVMSectionType.vmDescription.rawValue else {
            throw VMStateError.expectedVMDescription(got: type)
        }
        let length = try file.getBE32()
        guard length <= limits.maximumVMDescriptionLength else {
            throw VMStateError.vmDescriptionTooLong(length: length, maximum: limits.maximumVMDescriptionLength)
        }
        try file.skip(UInt64(length))
    }
}
