// The framing of a QEVM stream, read once for both of its readers: QEVMStreamReader
// (loads a stream into the local machine) and QEVMInspector (walks any stream for
// `snapshot inspect`). Only the wire is read here — what a record means (is it the
// local machine type, which local RAM block, which device) stays with each caller.
// Keeping one parser keeps the two in step: the same bytes end in the same error,
// with the same context and offset, whichever of them reads them.

/// The header of a SECTION_START or SECTION_FULL record (qemu_loadvm_section_start_full).
struct QEVMSectionHeader {
    let sectionID: UInt32
    let name: String
    let instanceID: UInt32
    let versionID: UInt32

    /// QEMU refuses a section whose version_id is not the one it registered (the iterative 'ram' one).
    func checkVersion(_ supported: UInt32) throws {
        guard versionID == supported else {
            throw VMStateError.unsupportedSectionVersion(
                section: name, incoming: Int(versionID),
                local: Int(supported))
        }
    }
}

/// The header of a SECTION_PART or SECTION_END record: only the id of the section it continues.
struct QEVMSectionContinuation {
    let sectionID: UInt32
    /// SECTION_END: the iterative section is complete after this record.
    let isEnd: Bool

    /// Only a section that started and has not ended may continue (qemu_loadvm_section_part_end).
    func check(startedID: UInt32?, ended: Bool) throws {
        guard sectionID == startedID, !ended else {
            throw VMStateError.unknownSectionID(sectionID, type: isEnd ? "SECTION_END" : "SECTION_PART")
        }
    }
}

/// One record of the section loop, its header already read.
enum QEVMSectionRecord {
    case eof
    case start(QEVMSectionHeader)
    case full(QEVMSectionHeader)
    case continuation(QEVMSectionContinuation)
}

/// A be64 RAM record header (ram_load_precopy): flags in the low bits, above them a
/// page-aligned offset into a block, or the total RAM size for the block list.
enum RAMRecord {
    /// MEM_SIZE: the RAM block list follows, its lengths adding up to `totalLength`.
    case blockList(totalLength: UInt64)
    case page(RAMPageHeader)
    /// EOS: this section's RAM data ends.
    case endOfSection
}

struct RAMPageHeader {
    /// Where the page starts in its block.
    let address: UInt64
    /// ZERO: one fill byte follows instead of the page.
    let isZero: Bool
    /// CONTINUE: the block of the page before, so no block name follows.
    let continuesBlock: Bool

    /// A block's length comes from the stream or the machine; the offset from the stream, unchecked.
    func checkInside(block: String, length: UInt64, pageSize: Int = QEMUFileFormat.targetPageSize) throws {
        guard address <= length, length - address >= UInt64(pageSize) else {
            throw VMStateError.ramOffsetOutOfRange(block: block, offset: address, length: length)
        }
    }

    /// What is being read while the page's data is: part of the truncation error text.
    func dataContext(block: String) -> ReadContext { .ramPage(address: address, block: block) }
}

/// What a stream's configuration section says (QEMU's vmstate_configuration): the machine
/// type, and what the subsections QEMU adds when they are needed carry.
public struct QEVMConfiguration: Equatable, Sendable {
    public var machineType: String
    /// `configuration/target-page-bits`: sent by targets whose page size is not their minimum
    /// (Arm: 4 KiB pages on a target that allows 1 KiB); RAM records use pages of 1 << bits.
    public var targetPageBits: UInt32?
    /// `configuration/capabilities`: migration capabilities both ends must agree on (x-ignore-shared).
    public var capabilities: [String] = []
    /// `configuration/uuid`: the source's VM UUID (validate-uuid).
    public var uuid: [UInt8]?

    public init(machineType: String) { self.machineType = machineType }
}

extension QEMUFileReader {
    /// Magic, version and the configuration section (qemu_loadvm_state up to the
    /// section loop), with the configuration's subsections when QEMU sent any.
    func readStreamHeader(maximumMachineTypeLength: Int) throws -> QEVMConfiguration {
        context = "stream header"
        let magic = try getBE32()
        guard magic == QEMUFileFormat.magic else { throw VMStateError.notAMigrationStream(magic: magic) }
        let version = try getBE32()
        guard version == QEMUFileFormat.version else { throw VMStateError.unsupportedStreamVersion(version) }

        // vmstate_configuration: be32 length, then the name without a NUL.
        context = "configuration section"
        guard try getByte() == QEMUVMSectionType.configuration.rawValue else {
            throw VMStateError.configurationMissing
        }
        let length = try getBE32()
        guard length <= maximumMachineTypeLength else {
            throw VMStateError.configurationNameTooLong(length: length, maximum: maximumMachineTypeLength)
        }
        guard let machineType = String(validating: try getBytes(Int(length)), as: UTF8.self) else {
            throw VMStateError.invalidName(context: "configuration section")
        }
        var configuration = QEVMConfiguration(machineType: machineType)
        try readConfigurationSubsections(into: &configuration)
        return configuration
    }

    /// The subsections of vmstate_configuration (QEMU ≥ 2.10; each only when needed). A
    /// subsection is a QEMU_VM_SUBSECTION byte, its name and be32 version_id, then its fields.
    private func readConfigurationSubsections(into configuration: inout QEVMConfiguration) throws {
        while try peek(1) == [QEMUVMSectionType.subsection.rawValue] {
            _ = try getByte()
            let name = try getName("configuration subsection")
            context = "configuration subsection '\(name)'"
            let version = try getBE32()
            guard version == 1 else {
                throw VMStateError.unknownSubsection(name: name, parent: "configuration", version: Int(version))
            }
            switch name {
            case "configuration/target-page-bits":
                configuration.targetPageBits = try getBE32()
            case "configuration/capabilities":
                let count = try getBE32()
                // QEMU has a few dozen capabilities; a larger count is not a stream.
                guard count <= 256 else {
                    throw VMStateError.invalidValue(
                        device: "configuration", version: 1, field: "caps_count",
                        reason: "\(count) capabilities")
                }
                for _ in 0..<count { configuration.capabilities.append(try getName("capability")) }
            case "configuration/uuid":
                configuration.uuid = try getBytes(16)
            default:
                throw VMStateError.unknownSubsection(name: name, parent: "configuration", version: Int(version))
            }
        }
    }

    /// The next record's type byte and header. A caller that reports where records
    /// start takes `offset` before calling: the record begins at its type byte.
    func readSectionRecord() throws -> QEVMSectionRecord {
        context = "section type"
        let offset = self.offset
        let type = try getByte()
        switch QEMUVMSectionType(rawValue: type) {
        case .eof:
            return .eof
        case .sectionStart, .sectionFull:
            context = "section header"
            let header = QEVMSectionHeader(
                sectionID: try getBE32(), name: try getName("section header"),
                instanceID: try getBE32(), versionID: try getBE32())
            return type == QEMUVMSectionType.sectionStart.rawValue ? .start(header) : .full(header)
        case .sectionPart, .sectionEnd:
            context = "section header"
            return .continuation(.init(sectionID: try getBE32(), isEnd: type == QEMUVMSectionType.sectionEnd.rawValue))
        default:
            throw VMStateError.unknownSectionType(type, offset: offset)
        }
    }

    /// The footer after each section's data (check_section_footer): it must repeat the section id.
    func checkFooter(section: String, sectionID: UInt32) throws {
        context = "footer of section '\(section)'"
        guard try getByte() == QEMUVMSectionType.sectionFooter.rawValue else {
            throw VMStateError.missingSectionFooter(section: section, sectionID: sectionID)
        }
        let read = try getBE32()
        guard read == sectionID else {
            throw VMStateError.mismatchedSectionFooter(section: section, read: read, expected: sectionID)
        }
    }

    // MARK: RAM (ram_load_precopy)

    /// `pageSize` is the target's (flags live in the bits below it): 4 KiB here, other sizes in
    /// QEMU streams of other targets (256 bytes on AVR, 16 KiB on LoongArch).
    func readRAMRecord(pageSize targetPageSize: Int = QEMUFileFormat.targetPageSize) throws -> RAMRecord {
        context = "RAM page header"
        let pageSize = UInt64(targetPageSize)
        let header = try getBE64()
        let flags = header & (pageSize - 1)
        let address = header & ~(pageSize - 1)
        switch flags & ~RAMSaveFlags.continue.rawValue {
        case RAMSaveFlags.memSize.rawValue:
            return .blockList(totalLength: address)
        case RAMSaveFlags.zero.rawValue, RAMSaveFlags.page.rawValue:
            return .page(
                RAMPageHeader(
                    address: address, isZero: flags & RAMSaveFlags.zero.rawValue != 0,
                    continuesBlock: flags & RAMSaveFlags.continue.rawValue != 0))
        case RAMSaveFlags.eos.rawValue:
            return .endOfSection
        default:
            throw VMStateError.ramUnknownFlags(flags)
        }
    }

    /// The index of the block `page` goes to (ram_block_from_stream): the previous
    /// page's block with CONTINUE, else the block named next, found by `index(named:)`.
    /// The caller keeps the result as the next page's `previous`.
    func readRAMBlock(for page: RAMPageHeader, previous: Int?, index: (_ named: String) -> Int?) throws -> Int {
        if page.continuesBlock {
            guard let previous else { throw VMStateError.ramNoBlockForContinue }
            return previous
        }
        let name = try getName("RAM block name")
        guard let found = index(name) else { throw VMStateError.unknownRAMBlock(name) }
        return found
    }

    /// The byte after a zero page's header: QEMU sends the fill value and accepts only 0.
    func readZeroPageFill() throws {
        context = "zero page fill byte"
        let fill = try getByte()
        guard fill == 0 else { throw VMStateError.ramZeroPageFill(fill) }
    }
}
