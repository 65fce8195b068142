// Walks any QEVM stream without knowing its machine, for `emupanel snapshot
// inspect`. RAM sections describe themselves (block list, page flags); device
// sections do not — their layout lives in the device's code — so, like QEMU's
// analyze-migration.py, the walk sizes each one from the VMDESCRIPTION JSON that
// ends the stream, and checks every subsection header and footer it meets on the
// way. Nothing is allocated by a length read from the input, so any bytes end in
// a report or an error (the fuzz target feeds it too).

public struct QEVMInspectionError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public enum QEVMInspector {
    /// analyze-migration.py looks for the VMDESCRIPTION in the last 10 MB of a file.
    public static let vmDescriptionSearchWindow = 10 << 20

    /// Where the VMDESCRIPTION JSON sits in the stream, found beforehand from its tail.
    public struct VMDescription {
        public let json: JSONValue
        /// Stream offset of the JSON's first byte, and its length.
        public let offset: UInt64
        public let length: Int
        public init(json: JSONValue, offset: UInt64, length: Int) {
            self.json = json
            self.offset = offset
            self.length = length
        }
    }

    /// Finds the VMDESCRIPTION in the last bytes of a stream of `totalBytes`.
    public static func locateVMDescription(tail: [UInt8], totalBytes: UInt64) -> VMDescription? {
        guard let found = QEVMPreflight.locateVMDescription(inTail: tail) else { return nil }
        return VMDescription(
            json: found.json, offset: totalBytes - UInt64(tail.count) + UInt64(found.start),
            length: found.length)
    }

    /// Inspects a whole stream held in memory.
    public static func inspect(_ bytes: [UInt8]) throws -> QEVMInspection {
        let tail = Array(bytes.suffix(vmDescriptionSearchWindow))
        return try inspect(
            source: MemorySource(bytes), totalBytes: UInt64(bytes.count),
            vmDescription: locateVMDescription(tail: tail, totalBytes: UInt64(bytes.count)))
    }

    /// Inspects a stream of `totalBytes` read from `source` (a file, read once, front to back).
    public static func inspect(
        source: ByteSource, totalBytes: UInt64, vmDescription: VMDescription?
    ) throws
        -> QEVMInspection
    {
        try Walk(source: source, vmDescription: vmDescription).run(totalBytes: totalBytes)
    }
}

private final class Walk {
    let file: QEMUFileReader
    let vmDescription: QEVMInspector.VMDescription?
    var report = QEVMInspection()
    var ramSectionID: UInt32?
    var ramEnded = false
    var lastBlock: Int?
    var usedDescriptions = Set<Int>()
    /// The target's page size: RAM records carry their flags below it.
    var pageSize = QEMUFileFormat.targetPageSize

    /// Bounds for what the stream itself announces.
    static let maximumMachineTypeLength = 256
    static let maximumRAMBlocks = 1024
    static let maximumNesting = 32
    /// Elements of one struct array; each is walked, so the walk stays bounded by the input.
    static let maximumArrayLength: Int64 = 1 << 20

    init(source: ByteSource, vmDescription: QEVMInspector.VMDescription?) {
        file = QEMUFileReader(source: source)
        self.vmDescription = vmDescription
    }

    func fail(_ message: String) -> QEVMInspectionError {
        QEVMInspectionError("\(message) (at offset \(file.offset))")
    }

    func run(totalBytes: UInt64) throws -> QEVMInspection {
        report.totalBytes = totalBytes
        let configuration = try file.readStreamHeader(maximumMachineTypeLength: Self.maximumMachineTypeLength)
        report.machineType = configuration.machineType
        report.capabilities = configuration.capabilities
        // readStreamHeader accepts this version only.
        report.streamVersion = QEMUFileFormat.version
        pageSize = try Self.pageSize(configuration: configuration, vmDescription: vmDescription?.json, fail: fail)
        report.pageSize = pageSize
        sections: while true {
            let offset = file.offset
            switch try file.readSectionRecord() {
            case .eof:
                break sections
            case .start(let header):
                guard header.name == QEMUFileFormat.ramSectionName, ramSectionID == nil else {
                    throw fail("iterative section '\(header.name)': only one 'ram' section may start")
                }
                try header.checkVersion(QEMUFileFormat.ramSectionVersion)
                ramSectionID = header.sectionID
                try readRAM()
                try file.checkFooter(section: header.name, sectionID: header.sectionID)
                record("start", header, from: offset)
                report.ram.wireBytes += file.offset - offset
            case .full(let header):
                try readDevice(header)
                try file.checkFooter(section: header.name, sectionID: header.sectionID)
                record("full", header, from: offset)
            case .continuation(let continuation):
                try continuation.check(startedID: ramSectionID, ended: ramEnded)
                try readRAM()
                try file.checkFooter(section: QEMUFileFormat.ramSectionName, sectionID: continuation.sectionID)
                if continuation.isEnd { ramEnded = true }
                report.sections.append(
                    .init(
                        kind: continuation.isEnd ? "end" : "part",
                        sectionID: continuation.sectionID, name: QEMUFileFormat.ramSectionName,
                        instanceID: nil, versionID: nil,
                        offset: offset, length: file.offset - offset))
                report.ram.wireBytes += file.offset - offset
            }
        }
        try readTrailer()
        return report
    }

    /// The configuration's target-page-bits when QEMU sent it, else the VMDESCRIPTION's
    /// page_size (what analyze-migration.py reads), else 4 KiB; the two must agree.
    static func pageSize(
        configuration: QEVMConfiguration, vmDescription: JSONValue?,
        fail: (String) -> QEVMInspectionError
    ) throws -> Int {
        let described = vmDescription?["page_size"]?.intValue
        // Flags live below the page size; QEMU's targets use 256-byte (AVR) to 64 KiB pages.
        let usable: (Int64) -> Bool = { $0 >= 256 && $0 <= 65536 && $0 & ($0 - 1) == 0 }
        if let bits = configuration.targetPageBits {
            guard bits >= 8, bits <= 16 else { throw fail("target page bits \(bits) are not a page size") }
            let size = Int64(1) << Int64(bits)
            if let described, described != size {
                throw fail("target page bits \(bits) disagree with the VMDESCRIPTION's page_size \(described)")
            }
            return Int(size)
        }
        guard let described else { return QEMUFileFormat.targetPageSize }
        guard usable(described) else { throw fail("VMDESCRIPTION page_size \(described) is not a page size") }
        return Int(described)
    }

    private func record(_ kind: String, _ header: QEVMSectionHeader, from offset: UInt64) {
        report.sections.append(
            .init(
                kind: kind, sectionID: header.sectionID, name: header.name,
                instanceID: header.instanceID, versionID: header.versionID,
                offset: offset, length: file.offset - offset))
    }

    // MARK: RAM (the same flags ram_load_precopy reads, counted instead of applied)

    private func readRAM() throws {
        report.ram.sections += 1
        while true {
            switch try file.readRAMRecord(pageSize: pageSize) {
            case .blockList(let totalLength):
                try readBlockList(total: totalLength)
            case .page(let page):
                let block = try file.readRAMBlock(for: page, previous: lastBlock) { name in
                    report.ram.blocks.firstIndex(where: { $0.idstr == name })
                }
                lastBlock = block
                let info = report.ram.blocks[block]
                try page.checkInside(block: info.idstr, length: info.length, pageSize: pageSize)
                report.ram.pages += 1
                if page.isZero {
                    try file.readZeroPageFill()
                    report.ram.zeroPages += 1
                } else {
                    file.context = page.dataContext(block: info.idstr)
                    try file.skip(UInt64(pageSize))
                    report.ram.normalPages += 1
                }
            case .endOfSection:
                return
            }
        }
    }

    private func readBlockList(total: UInt64) throws {
        guard report.ram.blocks.isEmpty else {
            throw VMStateError.ramSectionIncomplete(reason: "RAM block list sent twice")
        }
        var remaining = total
        while remaining > 0 {
            file.context = "RAM block list"
            let name = try file.getName("RAM block list")
            let length = try file.getBE64()
            // With x-ignore-shared, ram_save_setup sends each block's guest address after its length.
            if report.capabilities.contains("x-ignore-shared") { _ = try file.getBE64() }
            guard length > 0, length <= remaining, length % UInt64(pageSize) == 0 else {
                throw fail("RAM block '\(name)' announces \(length) bytes of the \(remaining) left in the block list")
            }
            guard !report.ram.blocks.contains(where: { $0.idstr == name }) else {
                throw VMStateError.duplicateSection(name: name, instanceID: 0)
            }
            guard report.ram.blocks.count < Self.maximumRAMBlocks else { throw fail("more than 1024 RAM blocks") }
            report.ram.blocks.append(.init(idstr: name, length: length))
            remaining -= length
        }
    }

    // MARK: Devices (sized from VMDESCRIPTION, as analyze-migration.py decodes them)

    private func readDevice(_ header: QEVMSectionHeader) throws {
        let (name, instanceID, versionID) = (header.name, header.instanceID, header.versionID)
        guard let devices = vmDescription?.json["devices"]?.arrayValue else {
            throw fail("device section '\(name)' cannot be decoded: the stream has no VMDESCRIPTION")
        }
        guard
            let index = devices.indices.first(where: {
                devices[$0]["name"]?.stringValue == name && devices[$0]["instance_id"]?.intValue == Int64(instanceID)
            }), usedDescriptions.insert(index).inserted
        else {
            throw fail("device section '\(name)' instance \(instanceID) is not in the VMDESCRIPTION")
        }
        let described = devices[index]
        // Old-style sections (SaveVMHandlers without a vmsd, e.g. QEMU's `slirp`) describe their
        // state as one buffer and give no version; analyze-migration.py does not check theirs.
        guard described["version"] == nil || described["version"]?.intValue == Int64(versionID) else {
            throw fail(
                "device section '\(name)' has version_id \(versionID), its VMDESCRIPTION says "
                    + "\(described["version"]?.intValue.map(String.init) ?? "none")")
        }
        let start = file.offset
        var subsections: [String] = []
        try skipState(described, device: name, depth: 0, subsections: &subsections)
        report.devices.append(
            .init(
                name: name, instanceID: instanceID, sectionID: header.sectionID,
                versionID: versionID, subsections: subsections, stateBytes: file.offset - start))
    }

    private func skipState(_ description: JSONValue, device: String, depth: Int, subsections: inout [String]) throws {
        guard depth < Self.maximumNesting else { throw fail("'\(device)': descriptions nested too deeply") }
        for field in description["fields"]?.arrayValue ?? [] {
            let fieldName = field["name"]?.stringValue ?? "?"
            file.context = "'\(device)' field '\(fieldName)'"
            let count = field["array_len"]?.intValue ?? 1
            if field["type"]?.stringValue == "struct", let inner = field["struct"] {
                // An array of structs (QEMU's VMSTATE_STRUCT_ARRAY, e.g. riscv's env.pmu_ctrs) is
                // described once with array_len: each element is the struct again, subsections too.
                guard count >= 0, count <= Self.maximumArrayLength else {
                    throw fail("'\(device)' field '\(fieldName)': array_len \(count) is not usable")
                }
                for _ in 0..<count {
                    try skipState(inner, device: device, depth: depth + 1, subsections: &subsections)
                }
                continue
            }
            let size = field["size"]?.intValue ?? -1
            let (bytes, overflow) = size.multipliedReportingOverflow(by: count)
            guard size >= 0, count >= 0, !overflow else {
                throw fail("'\(device)' field '\(fieldName)': VMDESCRIPTION gives no usable size")
            }
            try file.skip(UInt64(bytes))
        }
        for subsection in description["subsections"]?.arrayValue ?? [] {
            let expected = subsection["vmsd_name"]?.stringValue ?? "?"
            file.context = "subsection '\(expected)' of '\(device)'"
            guard try file.getByte() == QEMUVMSectionType.subsection.rawValue else {
                throw fail("subsection '\(expected)' of '\(device)' not found")
            }
            let name = try file.getName("subsection header")
            let version = try file.getBE32()
            guard name == expected, subsection["version"]?.intValue == Int64(version) else {
                throw fail("'\(device)': found subsection '\(name)' version \(version) where VMDESCRIPTION has '\(expected)'")
            }
            subsections.append("\(name) v\(version)")
            try skipState(subsection, device: device, depth: depth + 1, subsections: &subsections)
        }
    }

    // MARK: After EOF

    private func readTrailer() throws {
        file.context = "VM description"
        guard try !file.atEnd() else {
            if vmDescription != nil { throw fail("the stream ends at EOF, yet its tail looked like a VMDESCRIPTION") }
            return
        }
        guard try file.getByte() == QEMUVMSectionType.vmDescription.rawValue else {
            throw fail("bytes after QEMU_VM_EOF are not a VMDESCRIPTION")
        }
        let length = try file.getBE32()
        guard let vmDescription, vmDescription.offset == file.offset, vmDescription.length == Int(length) else {
            throw fail("the VMDESCRIPTION after EOF is not valid JSON of its announced \(length) bytes")
        }
        try file.skip(UInt64(length))
        guard try file.atEnd() else { throw fail("bytes follow the VMDESCRIPTION") }
        report.vmDescriptionBytes = length
    }
}
