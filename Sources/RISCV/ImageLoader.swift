// Loaders for guest images: raw binaries at an address and ELF64 RISC-V
// executables (ELF spec / System V gABI; RISC-V psABI for EM_RISCV = 243).
// Everything in the file is validated first; a corrupt image is an error,
// never a crash, and nothing is written to RAM until the whole file checks.

public struct LoadedImage: Sendable, Equatable {
    public let entry: UInt64
    public let lowest: UInt64
    public let highest: UInt64
}

public enum ImageLoader {
    /// Places `bytes` at `address` in RAM.
    public static func loadRaw(_ bytes: [UInt8], at address: UInt64, into ram: GuestRAM, name: String = "image") throws -> LoadedImage {
        guard !bytes.isEmpty, ram.contains(address, count: bytes.count) else {
            throw MachineError.imageDoesNotFit(name: name, address: address, size: UInt64(bytes.count))
        }
        try ram.write(bytes, at: address)
        return LoadedImage(entry: address, lowest: address, highest: address + UInt64(bytes.count))
    }

    struct Segment {
        let fileOffset: Int
        let fileSize: Int
        let address: UInt64
        let memorySize: UInt64
    }

    /// Loads the PT_LOAD segments of an ELF64 little-endian RISC-V
    /// executable at their physical addresses (as QEMU's load_elf does).
    public static func loadELF(_ bytes: [UInt8], into ram: GuestRAM) throws -> LoadedImage {
        let segments = try parseELF(bytes, ram: ram)
        for seg in segments.segments {
            try ram.write(bytes[seg.fileOffset..<seg.fileOffset + seg.fileSize], at: seg.address)
            let zeroCount = Int(seg.memorySize) - seg.fileSize
            if zeroCount > 0 {
                ram.host(seg.address + UInt64(seg.fileSize)).initializeMemory(as: UInt8.self, repeating: 0, count: zeroCount)
                ram.invalidateCode(physical: seg.address + UInt64(seg.fileSize), count: zeroCount)
            }
        }
        return LoadedImage(entry: segments.entry, lowest: segments.lowest, highest: segments.highest)
    }

    public static func isELF(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 4 && bytes[0] == 0x7f && bytes[1] == 0x45 && bytes[2] == 0x4c && bytes[3] == 0x46
    }

    static func parseELF(_ b: [UInt8], ram: GuestRAM) throws -> (segments: [Segment], entry: UInt64, lowest: UInt64, highest: UInt64) {
        func fail(_ why: String) -> MachineError { .invalidELF(why) }
        func u16(_ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
        func u32(_ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * UInt32($1)) } }
        func u64(_ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * UInt64($1)) } }

        guard b.count >= 64 else { throw fail("file too short for an ELF64 header (\(b.count) bytes)") }
        guard isELF(b) else { throw fail("bad magic") }
        guard b[4] == 2 else { throw fail("not ELFCLASS64") }
        guard b[5] == 1 else { throw fail("not little-endian") }
        guard b[6] == 1 else { throw fail("unknown ELF version \(b[6])") }
        let type = u16(16)
        guard type == 2 || type == 3 else { throw fail("not an executable (e_type \(type))") }
        guard u16(18) == 243 else { throw fail("not a RISC-V image (e_machine \(u16(18)))") }
        let entry = u64(24)
        let phoff = u64(32)
        let phentsize = Int(u16(54))
        let phnum = Int(u16(56))
        guard phnum > 0 else { throw fail("no program headers") }
        guard phentsize == 56 else { throw fail("program header size \(phentsize), expected 56") }
        guard phoff <= UInt64(b.count), UInt64(b.count) - phoff >= UInt64(phnum * phentsize) else {
            throw fail("program headers beyond end of file")
        }
        var segments: [Segment] = []
        var lowest = UInt64.max
        var highest: UInt64 = 0
        for i in 0..<phnum {
            let h = Int(phoff) + i * phentsize
            guard u32(h) == 1 else { continue }  // PT_LOAD
            let offset = u64(h + 8)
            let paddr = u64(h + 24)
            let filesz = u64(h + 32)
            let memsz = u64(h + 40)
            guard filesz <= memsz else { throw fail("segment \(i): p_filesz > p_memsz") }
            guard offset <= UInt64(b.count), UInt64(b.count) - offset >= filesz else {
                throw fail("segment \(i): file data beyond end of file")
            }
            if memsz == 0 { continue }
            guard memsz <= UInt64(ram.size), ram.contains(paddr, count: Int(memsz)) else {
                throw MachineError.imageDoesNotFit(name: "ELF segment \(i)", address: paddr, size: memsz)
            }
            segments.append(Segment(fileOffset: Int(offset), fileSize: Int(filesz), address: paddr, memorySize: memsz))
            lowest = min(lowest, paddr)
            highest = max(highest, paddr + memsz)
        }
        guard !segments.isEmpty else { throw fail("no loadable segments") }
        // Overlapping segments mean a corrupt file.
        let sorted = segments.sorted { $0.address < $1.address }
        for (a, c) in zip(sorted, sorted.dropFirst()) where a.address + a.memorySize > c.address {
            throw fail("overlapping segments at 0x\(String(c.address, radix: 16))")
        }
        guard ram.contains(entry) else { throw fail("entry point 0x\(String(entry, radix: 16)) outside RAM") }
        return (segments, entry, lowest, highest)
    }
}
