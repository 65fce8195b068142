// What `emupanel snapshot inspect` reports about a QEVM stream: its sections, the
// devices with their versions and subsections, and a RAM summary with QEMU's
// query-migrate meanings (normal pages travelled whole, zero pages as a marker).

public struct QEVMInspection: Equatable, Sendable {
    /// One record of the stream as it appeared on the wire.
    public struct Section: Equatable, Sendable {
        /// QEMU's names for the record types: "start", "part", "end", "full".
        public let kind: String
        public let sectionID: UInt32
        public let name: String
        public let instanceID: UInt32?
        public let versionID: UInt32?
        /// Where the record starts (its type byte) and its length, footer included.
        public let offset: UInt64
        public let length: UInt64
    }

    public struct RAMBlockInfo: Equatable, Sendable {
        public let idstr: String
        public let length: UInt64
    }

    public struct RAMSummary: Equatable, Sendable {
        public var blocks: [RAMBlockInfo] = []
        /// Sections that carried pages or the block list (start, parts, end).
        public var sections = 0
        /// Page records; a live migration resends dirty pages, so this may exceed the guest's pages.
        public var pages: UInt64 = 0
        /// Pages sent as a zero marker (query-migrate's "duplicate").
        public var zeroPages: UInt64 = 0
        /// Pages sent whole (query-migrate's "normal").
        public var normalPages: UInt64 = 0
        /// Bytes of the RAM sections on the wire, framing included.
        public var wireBytes: UInt64 = 0
        /// Guest RAM the block list announced.
        public var totalBytes: UInt64 { blocks.reduce(0) { $0 + $1.length } }
    }

    public struct DeviceInfo: Equatable, Sendable {
        /// The section idstr (QEMU: the vmsd name, or a per-device path).
        public let name: String
        public let instanceID: UInt32
        public let sectionID: UInt32
        public let versionID: UInt32
        /// "name v<version>" of each subsection found on the wire, nested ones included.
        public let subsections: [String]
        /// Bytes of the device's state, without section header and footer.
        public let stateBytes: UInt64
    }

    public var streamVersion: UInt32 = 0
    public var machineType = ""
    /// The target's page size RAM travels in (4 KiB for RISC-V and x86, 256 bytes for AVR, 16 KiB for LoongArch).
    public var pageSize = QEMUFileFormat.targetPageSize
    /// Migration capabilities the configuration section says both ends must share.
    public var capabilities: [String] = []
    public var sections: [Section] = []
    public var ram = RAMSummary()
    public var devices: [DeviceInfo] = []
    /// Length of the trailing VMDESCRIPTION JSON, nil when the stream has none.
    public var vmDescriptionBytes: UInt32?
    public var totalBytes: UInt64 = 0

    public init() {}
}

extension QEVMInspection {
    /// The report as JSON (camelCase, like the REST API).
    public func json() -> JSONValue {
        func int<T: BinaryInteger>(_ value: T) -> JSONValue { .int(Int64(clamping: value)) }
        func optional<T: BinaryInteger>(_ value: T?) -> JSONValue { value.map(int) ?? .null }
        return .object([
            ("machineType", .string(machineType)),
            ("streamVersion", int(streamVersion)),
            ("pageSize", int(pageSize)),
            ("capabilities", .array(capabilities.map(JSONValue.string))),
            ("totalBytes", int(totalBytes)),
            (
                "ram",
                .object([
                    ("totalBytes", int(ram.totalBytes)),
                    ("blocks", .array(ram.blocks.map { .object([("idstr", .string($0.idstr)), ("length", int($0.length))]) })),
                    ("sections", int(ram.sections)),
                    ("pages", int(ram.pages)),
                    ("zeroPages", int(ram.zeroPages)),
                    ("normalPages", int(ram.normalPages)),
                    ("wireBytes", int(ram.wireBytes)),
                ])
            ),
            (
                "devices",
                .array(
                    devices.map { device in
                        .object([
                            ("name", .string(device.name)), ("instanceId", int(device.instanceID)),
                            ("sectionId", int(device.sectionID)), ("versionId", int(device.versionID)),
                            ("subsections", .array(device.subsections.map(JSONValue.string))),
                            ("stateBytes", int(device.stateBytes)),
                        ])
                    })
            ),
            (
                "sections",
                .array(
                    sections.map { section in
                        .object([
                            ("kind", .string(section.kind)), ("sectionId", int(section.sectionID)),
                            ("name", .string(section.name)), ("instanceId", optional(section.instanceID)),
                            ("versionId", optional(section.versionID)), ("offset", int(section.offset)),
                            ("length", int(section.length)),
                        ])
                    })
            ),
            ("vmDescriptionBytes", optional(vmDescriptionBytes)),
        ])
    }

    /// The report for people: a summary, then the devices, then every section in order.
    public func text() -> String {
        var lines: [String] = []
        lines.append("machine type   \(machineType)")
        lines.append(
            "stream         QEVM version \(streamVersion), \(totalBytes) bytes"
                + (vmDescriptionBytes.map { ", VMDESCRIPTION \($0) bytes" } ?? ", no VMDESCRIPTION"))
        if !capabilities.isEmpty { lines.append("capabilities   " + capabilities.joined(separator: ", ")) }
        lines.append(
            "RAM            \(ram.totalBytes) bytes in \(ram.blocks.count) block(s) of \(pageSize)-byte pages; \(ram.pages) pages sent "
                + "(\(ram.zeroPages) zero, \(ram.normalPages) with data), \(ram.wireBytes) bytes on the wire in \(ram.sections) section(s)")
        for block in ram.blocks { lines.append("  \(block.idstr)  \(block.length) bytes") }
        lines.append("devices        \(devices.count)")
        for device in devices {
            var line = "  \(device.name) instance \(device.instanceID)  version_id \(device.versionID)  \(device.stateBytes) bytes"
            if !device.subsections.isEmpty { line += "  subsections: " + device.subsections.joined(separator: ", ") }
            lines.append(line)
        }
        lines.append("sections       \(sections.count)")
        let header = ["id", "kind", "name", "instance", "version", "offset", "bytes"]
        let rows = sections.map { s in
            [
                String(s.sectionID), s.kind, s.name, s.instanceID.map(String.init) ?? "-", s.versionID.map(String.init) ?? "-",
                String(s.offset), String(s.length),
            ]
        }
        lines += TextTable.render(header: header, rows: rows, indent: "  ")
        return lines.joined(separator: "\n") + "\n"
    }
}
