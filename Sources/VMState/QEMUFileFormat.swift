// Byte-level constants of QEMU's migration stream (migration/savevm.c, migration/ram.c).
// They are the wire contract with QEMU's own tools (scripts/analyze-migration.py),
// so they are spelled exactly as QEMU spells them.

/// QEMU_VM_* section type bytes that start each record of a QEVM stream.
public enum QEMUVMSectionType: UInt8, Sendable {
    /// QEMU_VM_EOF. QEMU uses 0x00 here, and analyze-migration.py stops on 0x00.
    case eof = 0x00
    case sectionStart = 0x01
    case sectionPart = 0x02
    case sectionEnd = 0x03
    case sectionFull = 0x04
    case subsection = 0x05
    case vmDescription = 0x06
    case configuration = 0x07
    case command = 0x08
    case sectionFooter = 0x7e
}

public enum QEMUFileFormat {
    /// "QEVM", QEMU_VM_FILE_MAGIC.
    public static let magic: UInt32 = 0x5145_564d
    /// QEMU_VM_FILE_VERSION; version 2 streams are obsolete in QEMU too.
    public static let version: UInt32 = 3
    /// TARGET_PAGE_SIZE for RISC-V: RAM travels in 4 KiB pages.
    public static let targetPageSize = 4096
    /// The "ram" section's version_id; analyze-migration.py accepts only 4.
    public static let ramSectionVersion: UInt32 = 4
    /// The idstr QEMU registers RAM migration under.
    public static let ramSectionName = "ram"
    /// Section names and vmsd names travel as one length byte; analyze-migration.py
    /// reads that byte signed, so names stay below 128 bytes.
    public static let maximumNameLength = 127
}

/// RAM_SAVE_FLAG_*: low bits of each be64 page header (the page offset is page aligned).
public struct RAMSaveFlags: OptionSet, Sendable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The page is all zeroes: one fill byte follows instead of the page.
    public static let zero = RAMSaveFlags(rawValue: 0x02)
    /// The header carries the total RAM size; the RAM block list follows.
    public static let memSize = RAMSaveFlags(rawValue: 0x04)
    /// A full page of data follows.
    public static let page = RAMSaveFlags(rawValue: 0x08)
    /// End of this section's RAM data.
    public static let eos = RAMSaveFlags(rawValue: 0x10)
    /// Same RAM block as the previous page, so its idstr is not repeated.
    public static let `continue` = RAMSaveFlags(rawValue: 0x20)

    static let knownMask: UInt64 = 0x3e
}
