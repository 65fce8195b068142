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
    private var ramStats = RAMTransferStats()

    /// `machineType` is the local canonical name the stream must carry; `entries` are the
    /// device sections the local machine expects, every one of which must arrive.
    public init(source: ByteSource, machineType: String, ramBlocks: [RAMBlock], entries: [SaveStateEntry],
                limits: QEVMStreamLimits = QEVMStreamLimits()) {
        file = QEMUFileReader(source: source)
        self.machineType = machineType
        self.ramBlocks = ramBlocks
        self.entries = entries
        self.limits = limits
    }

    /// Reads the whole stream (qemu_loadvm_state). Throws on any inconsistency.
    public func read() throws -> PendingLoad {
        file.context = "stream header"
        let magic = try file.getBE32()
        guard magic == QEMUFileFormat.magic else { throw VMStateError.notAMigrationStream(magic: magic) }
        let version = try file.getBE32()
        guard version == QEMUFileFormat.version else { throw VMStateError.unsupportedStreamVersion(version) }
        try readConfiguration()

        var pending: [(entry: SaveStateEntry, state: Any)] = []
        var loaded = Set<SectionKey>()
        sections: while true {
            file.context = "section type"
            let offset = file.offset
            let typeByte = try file.getByte()
            switch QEMUVMSectionType(rawValue: typeByte) {
            case .eof:
                break sections
            case .sectionStart, .sectionFull:
                file.context = "section header"
                let sectionID = try file.getBE32()
                let name = try file.getName("section header")
                let instanceID = try file.getBE32()
                let versionID = try file.getBE32()
                if typeByte == QEMUVMSectionType.sectionStart.rawValue {
                    try startRAM(sectionID: sectionID, name: name, instanceID: instanceID, versionID: versionID)
                } else {
                    guard let entry = entries.first(where: { $0.idstr == name && $0.instanceID == instanceID }) else {
                        throw VMStateError.unknownSection(name: name, instanceID: instanceID)
                    }
                    guard loaded.insert(SectionKey(name: name, instanceID: instanceID)).inserted else {
                        throw VMStateError.duplicateSection(name: name, instanceID: instanceID)
                    }
                    let state = try entry.description.load(from: file, into: entry.getState(),
                                                           versionID: Int(versionID))
                    try checkFooter(section: name, sectionID: sectionID)
                    pending.append((entry, state))
                }
            case .sectionPart, .sectionEnd:
                file.context = "section header"
                let sectionID = try file.getBE32()
                let type = typeByte == QEMUVMSectionType.sectionPart.rawValue ? "SECTION_PART" : "SECTION_END"
                guard sectionID == ramSectionID, !ramEnded else {
                    throw VMStateError.unknownSectionID(sectionID, type: type)
                }
                try readRAM()
                try checkFooter(section: QEMUFileFormat.ramSectionName, sectionID: sectionID)
                if typeByte == QEMUVMSectionType.sectionEnd.rawValue { ramEnded = true }
            default:
                throw VMStateError.unknownSectionType(typeByte, offset: offset)
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

    // MARK: Configuration (vmstate_configuration, configuration_post_load)

    private func readConfiguration() throws {
        file.context = "configuration section"
        let type = try file.getByte()
        guard type == QEMUVMSectionType.configuration.rawValue else { throw VMStateError.configurationMissing }
        let length = try file.getBE32()
        guard length <= limits.maximumMachineTypeLength else {
            throw VMStateError.configurationNameTooLong(length: length, maximum: limits.maximumMachineTypeLength)
        }
        let bytes = try file.getBytes(Int(length))
        guard let received = String(validating: bytes, as: UTF8.self) else {
            throw VMStateError.invalidName(context: "configuration section")
        }
        guard received == machineType else {
            throw VMStateError.machineTypeMismatch(received: received, local: machineType)
        }
    }

    // MARK: Footers (check_section_footer)

    private func checkFooter(section: String, sectionID: UInt32) throws {
        file.context = "footer of section '\(section)'"
        guard try file.getByte() == QEMUVMSectionType.sectionFooter.rawValue else {
            throw VMStateError.missingSectionFooter(section: section, sectionID: sectionID)
        }
        let read = try file.getBE32()
        guard read == sectionID else {
            throw VMStateError.mismatchedSectionFooter(section: section, read: read, expected: sectionID)
        }
    }

    // MARK: RAM (ram_load_precopy)

    private func startRAM(sectionID: UInt32, name: String, instanceID: UInt32, versionID: UInt32) throws {
        guard name == QEMUFileFormat.ramSectionName, instanceID == 0 else {
            if entries.contains(where: { $0.idstr == name && $0.instanceID == instanceID }) {
                throw VMStateError.ramUnexpectedIterative(name)
            }
            throw VMStateError.unknownSection(name: name, instanceID: instanceID)
        }
        guard ramSectionID == nil else { throw VMStateError.duplicateSection(name: name, instanceID: instanceID) }
        guard versionID == QEMUFileFormat.ramSectionVersion else {
            throw VMStateError.unsupportedSectionVersion(section: name, incoming: Int(versionID),
                                                         local: Int(QEMUFileFormat.ramSectionVersion))
        }
        ramSectionID = sectionID
        try readRAM()
        try checkFooter(section: name, sectionID: sectionID)
    }

    private func readRAM() throws {
        let pageSize = UInt64(QEMUFileFormat.targetPageSize)
        while true {
            file.context = "RAM page header"
            let header = try file.getBE64()
            let flags = header & (pageSize - 1)
            let address = header & ~(pageSize - 1)
            let kind = flags & ~RAMSaveFlags.continue.rawValue
            switch kind {
            case RAMSaveFlags.memSize.rawValue:
                try readRAMBlockList(totalLength: address)
            case RAMSaveFlags.zero.rawValue, RAMSaveFlags.page.rawValue:
                guard ramBlockListSeen else {
                    throw VMStateError.ramSectionIncomplete(reason: "RAM page before the RAM block list")
                }
                let blockIndex: Int
                if flags & RAMSaveFlags.continue.rawValue != 0 {
                    guard let last = lastRAMBlock else { throw VMStateError.ramNoBlockForContinue }
                    blockIndex = last
                } else {
                    let name = try file.getName("RAM block name")
                    guard let index = ramBlocks.firstIndex(where: { $0.idstr == name }) else {
                        throw VMStateError.unknownRAMBlock(name)
                    }
                    blockIndex = index
                }
                lastRAMBlock = blockIndex
                let block = ramBlocks[blockIndex]
                let length = UInt64(block.memory.count)
                guard address <= length, length - address >= pageSize else {
                    throw VMStateError.ramOffsetOutOfRange(block: block.idstr, offset: address, length: length)
                }
                let start = Int(address)
                let page = UnsafeMutableRawBufferPointer(rebasing: block.memory[start..<(start + Int(pageSize))])
                if kind == RAMSaveFlags.zero.rawValue {
                    file.context = "zero page fill byte"
                    let fill = try file.getByte()
                    guard fill == 0 else { throw VMStateError.ramZeroPageFill(fill) }
                    // The destination page may hold old data (restoring into a used guest).
                    if !UnsafeRawBufferPointer(page).isAllZero() { page.initializeMemory(as: UInt8.self, repeating: 0) }
                    ramStats.duplicatePages += 1
                } else {
                    file.context = "RAM page at 0x\(hex(address)) of \(block.idstr)"
                    try file.get(into: page)
                    ramStats.normalPages += 1
                }
            case RAMSaveFlags.eos.rawValue:
                return
            default:
                throw VMStateError.ramUnknownFlags(flags)
            }
        }
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
