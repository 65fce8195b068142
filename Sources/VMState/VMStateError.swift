// Every way saving or loading device state can fail. The texts follow QEMU's own
// error_report() wording (migration/savevm.c, migration/vmstate.c) so that an
// operator who knows QEMU recognises them, and each one names the device and the
// versions involved, because "migration failed" alone helps nobody.

#if canImport(Glibc)
    import Glibc
#endif

public enum VMStateError: Error, CustomStringConvertible, Equatable, Sendable {
    // Stream framing.
    case notAMigrationStream(magic: UInt32)
    case unsupportedStreamVersion(UInt32)
    case unexpectedEndOfStream(offset: UInt64, context: String)
    case unknownSectionType(UInt8, offset: UInt64)
    case configurationMissing
    case configurationNameTooLong(length: UInt32, maximum: Int)
    case machineTypeMismatch(received: String, local: String)
    case invalidName(context: String)
    case missingSectionFooter(section: String, sectionID: UInt32)
    case mismatchedSectionFooter(section: String, read: UInt32, expected: UInt32)
    case unknownSectionID(UInt32, type: String)
    case duplicateSection(name: String, instanceID: UInt32)
    case sectionMissing(name: String, instanceID: UInt32)
    case vmDescriptionTooLong(length: UInt32, maximum: Int)
    case expectedVMDescription(got: UInt8)

    // Sections and device state.
    case unknownSection(name: String, instanceID: UInt32)
    case unsupportedSectionVersion(section: String, incoming: Int, local: Int)
    case versionTooNew(device: String, incoming: Int, local: Int)
    case versionTooOld(device: String, incoming: Int, minimum: Int)
    case unknownSubsection(name: String, parent: String, version: Int)
    case lengthOutOfBounds(device: String, version: Int, field: String, length: UInt64, maximum: Int)
    case fieldSizeMismatch(device: String, version: Int, field: String, expected: Int, actual: Int)
    case invalidValue(device: String, version: Int, field: String, reason: String)
    case postLoadFailed(device: String, version: Int, reason: String)
    case preSaveFailed(device: String, version: Int, reason: String)
    case stateTypeMismatch(device: String, expected: String, actual: String)

    // RAM (migration/ram.c).
    case ramSectionIncomplete(reason: String)
    case unknownRAMBlock(String)
    case ramLengthMismatch(block: String, incoming: UInt64, local: UInt64)
    case ramOffsetOutOfRange(block: String, offset: UInt64, length: UInt64)
    case ramNoBlockForContinue
    case ramUnknownFlags(UInt64)
    case ramZeroPageFill(UInt8)
    case ramUnexpectedIterative(String)

    // Byte sinks and sources.
    case io(operation: String, errno: Int32)

    public var description: String {
        switch self {
        case .notAMigrationStream(let magic):
            return "Not a migration stream (magic 0x\(hex(magic)), expected 0x5145564d 'QEVM')"
        case .unsupportedStreamVersion(let version):
            return version == 2
                ? "SaveVM v2 format is obsolete and doesn't work anymore"
                : "Unsupported migration stream version \(version) (expected 3)"
        case .unexpectedEndOfStream(let offset, let context):
            return "Unexpected end of migration stream at offset \(offset)"
                + (context.isEmpty ? "" : " while reading \(context)")
        case .unknownSectionType(let type, let offset):
            return "Unknown savevm section type \(type) at offset \(offset)"
        case .configurationMissing:
            return "Configuration section missing"
        case .configurationNameTooLong(let length, let maximum):
            return "Configuration section: machine type name of \(length) bytes exceeds \(maximum)"
        case .machineTypeMismatch(let received, let local):
            return "Machine type received is '\(received)' and local is '\(local)'"
        case .invalidName(let context):
            return "Invalid (non-UTF-8 or empty) name in \(context)"
        case .missingSectionFooter(let section, let id):
            return "Missing section footer for \(section) (section id \(id))"
        case .mismatchedSectionFooter(let section, let read, let expected):
            return "Mismatched section id in footer for \(section) - read 0x\(hex(read)) expected 0x\(hex(expected))"
        case .unknownSectionID(let id, let type):
            return "Unknown section id \(id) in \(type) section"
        case .duplicateSection(let name, let instance):
            return "Section '\(name)' instance \(instance) appears twice in the stream"
        case .sectionMissing(let name, let instance):
            return "Device state '\(name)' instance \(instance) missing from the stream; nothing was applied"
        case .vmDescriptionTooLong(let length, let maximum):
            return "VM description of \(length) bytes exceeds the limit of \(maximum)"
        case .expectedVMDescription(let got):
            return "Expected vmdescription section, but got \(got)"
        case .unknownSection(let name, let instance):
            return "Unknown savevm section or instance '\(name)' \(instance). Make sure that your current VM setup matches your saved VM setup"
        case .unsupportedSectionVersion(let section, let incoming, let local):
            return "savevm: unsupported version \(incoming) for '\(section)' v\(local)"
        case .versionTooNew(let device, let incoming, let local):
            return "\(device): incoming version_id \(incoming) is greater than our version_id \(local)"
        case .versionTooOld(let device, let incoming, let minimum):
            return "\(device): incoming version_id \(incoming) is too old for local minimum version_id \(minimum)"
        case .unknownSubsection(let name, let parent, let version):
            return "VM subsection '\(name)' in '\(parent)' (version_id \(version)) does not exist"
        case .lengthOutOfBounds(let device, let version, let field, let length, let maximum):
            return "\(device) (version_id \(version)): field '\(field)' length \(length) exceeds its maximum \(maximum)"
        case .fieldSizeMismatch(let device, let version, let field, let expected, let actual):
            return "\(device) (version_id \(version)): field '\(field)' holds \(actual) elements, its description says \(expected)"
        case .invalidValue(let device, let version, let field, let reason):
            return "\(device) (version_id \(version)): field '\(field)': \(reason)"
        case .postLoadFailed(let device, let version, let reason):
            return "\(device) (version_id \(version)): post_load failed: \(reason)"
        case .preSaveFailed(let device, let version, let reason):
            return "\(device) (version_id \(version)): pre_save failed: \(reason)"
        case .stateTypeMismatch(let device, let expected, let actual):
            return "\(device): state description is for \(expected), but the device holds \(actual)"
        case .ramSectionIncomplete(let reason):
            return "RAM section incomplete: \(reason)"
        case .unknownRAMBlock(let name):
            return "Unknown ramblock \"\(name)\", cannot accept migration"
        case .ramLengthMismatch(let block, let incoming, let local):
            return "Length mismatch: \(block): 0x\(hex(incoming)) in != 0x\(hex(local))"
        case .ramOffsetOutOfRange(let block, let offset, let length):
            return "Illegal RAM offset 0x\(hex(offset)) in block \(block) of 0x\(hex(length)) bytes"
        case .ramNoBlockForContinue:
            return "Ack, bad migration stream! RAM page continues a block, but no block was named"
        case .ramUnknownFlags(let flags):
            return "Unknown combination of migration flags: 0x\(hex(flags))"
        case .ramZeroPageFill(let value):
            return "Found a zero page with value \(value)"
        case .ramUnexpectedIterative(let name):
            return "Iterative section '\(name)' is not RAM; only RAM is iterative in emupanel streams"
        case .io(let operation, let errno):
            return "\(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        }
    }
}

@inline(__always)
func hex<T: BinaryInteger>(_ value: T) -> String { String(value, radix: 16) }
