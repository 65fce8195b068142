// `snapshot inspect` on streams QEMU itself wrote, made here with the installed QEMUs
// (small guests, never committed files): riscv64 `virt` (struct arrays such as the
// CPU's env.pmu_ctrs, the old-style `slirp` section without a version), x86_64 q35,
// and AVR, whose target pages are 256 bytes.
import EmulatorCore
import Foundation
import Testing
import VMState

@testable import QEMUBackend

@Suite struct QEMUStreamInspectionTests {
    /// Saves a never-started guest of `machineType` (default devices) and inspects the file.
    static func inspect(binary: String, machineType: String, bios: String? = nil) throws -> QEVMInspection {
        let scratch = Scratch("inspect")
        defer { scratch.remove() }
        let configuration = QEMUGuestConfiguration(binary: binary, machineType: machineType, memoryMiB: 16, bios: bios)
        let guest = try QEMUGuest.start(
            configuration, directory: scratch.sub("guest"), logPath: scratch.sub("qemu.log"),
            paused: true)
        defer { guest.kill() }
        let saved = try guest.saveSnapshot(to: scratch.sub("stream.qevm"))
        let report = try SnapshotInspection.inspect(path: scratch.sub("stream.qevm"))
        #expect(report.totalBytes == UInt64(saved.file.sizeBytes))
        // Every byte is in a section, the header, EOF or the VMDESCRIPTION.
        let sections = report.sections.reduce(UInt64(0)) { $0 + $1.length }
        let header = UInt64(13 + report.machineType.utf8.count)
        #expect(header + sections + 1 + 5 + UInt64(report.vmDescriptionBytes ?? 0) == report.totalBytes)
        return report
    }

    @Test(.enabled(if: Installed.riscv64 != nil, "needs qemu-system-riscv64 (qemu-system-misc)"))
    func riscv64Virt() throws {
        let report = try Self.inspect(binary: Installed.riscv64!, machineType: "virt", bios: "none")
        #expect(report.machineType == "virt")
        #expect(report.pageSize == 4096)
        #expect(report.ram.blocks.contains { $0.idstr == "riscv_virt_board.ram" && $0.length == 16 << 20 })
        #expect(report.ram.pages == report.ram.totalBytes / 4096)
        // The CPU's 32 PMU counters are one struct described once with array_len 32.
        let cpu = try #require(report.devices.first { $0.name == "cpu" })
        #expect(cpu.stateBytes > 32 * 33)
        #expect(cpu.subsections.contains { $0.hasPrefix("cpu/pmp") })
        // slirp (the default user network) is an old-style section: no version in VMDESCRIPTION.
        let slirp = try #require(report.devices.first { $0.name == "slirp" })
        #expect(slirp.versionID == 4)
        #expect(report.devices.contains { $0.name == "serial" })
    }

    @Test(.enabled(if: Installed.x86_64 != nil, "needs qemu-system-x86_64 (qemu-system-x86)"))
    func x86_64Q35() throws {
        let report = try Self.inspect(binary: Installed.x86_64!, machineType: "pc-q35-7.2")
        #expect(report.machineType == "pc-q35-7.2")
        #expect(report.ram.blocks.contains { $0.idstr == "pc.ram" && $0.length == 16 << 20 })
        #expect(report.devices.contains { $0.name == "cpu" })
        #expect(report.devices.contains { $0.name == "ICH9LPC" || $0.name.hasSuffix("/ICH9LPC") })
    }

    @Test(.enabled(if: Installed.avr != nil, "needs qemu-system-avr (qemu-system-misc)"))
    func avrPagesAre256Bytes() throws {
        let report = try Self.inspect(binary: Installed.avr!, machineType: "arduino-mega-2560-v3")
        #expect(report.pageSize == 256)
        #expect(report.ram.blocks.map(\.idstr) == ["flash", "sram"])
        #expect(report.ram.pages == report.ram.totalBytes / 256)
    }
}
