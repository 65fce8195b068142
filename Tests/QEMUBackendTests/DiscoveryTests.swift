// Discovery against the installed QEMUs: versions, machine types and tiers computed
// from what QEMU reports, the blocker probe (default devices and configured devices),
// -dump-vmstate, and the per-binary cache.
import EmulatorCore
import Foundation
import Testing
import VMState

@testable import QEMUBackend

@Suite(.serialized) struct DiscoveryTests {
    /// One discovery shared by the tests (probing x86_64's ~60 machine types takes seconds).
    static let cache: Scratch = {
        // Shared by every test of the suite, so removed when the test process ends.
        atexit { DiscoveryTests.cache.remove() }
        return Scratch("discovery")
    }()
    static let discovery = QEMUDiscovery(cacheDirectory: cache.path)
    static let riscv64 = Result { try discovery.probe(binary: Installed.riscv64!) }
    static let x86_64 = Result { try discovery.probe(binary: Installed.x86_64!) }

    @Test(.enabled(if: Installed.riscv64 != nil, "needs qemu-system-riscv64 (qemu-system-misc)"))
    func riscv64VirtIsUnversioned() throws {
        let binary = try Self.riscv64.get()
        #expect(binary.name == "qemu-system-riscv64")
        #expect(binary.arch == "riscv64")
        #expect(binary.version.major >= 7)
        #expect(binary.sandbox)
        let virt = try #require(binary.machineType("virt"))
        #expect(virt.tier == .unversioned)
        #expect(virt.blockers.isEmpty)
        #expect(virt.probeError == nil)
        #expect(virt.tierReason.contains("same QEMU version"))
        // QEMU 7.2's riscv64 has no versioned machine types; "none" is not a guest's machine.
        #expect(binary.machineTypes.allSatisfy { $0.tier != .versioned })
        #expect(binary.machineType("none") == nil)
        // A machine that does not start with its defaults keeps a name-based tier and says why.
        if let icicle = binary.machineType("microchip-icicle-kit"), let error = icicle.probeError {
            #expect(icicle.tierReason.contains(error))
        }
    }

    @Test(.enabled(if: Installed.x86_64 != nil, "needs qemu-system-x86_64 (qemu-system-x86)"))
    func q35IsVersionedWithItsAlias() throws {
        let binary = try Self.x86_64.get()
        let q35 = try #require(binary.machineType("q35"))
        #expect(q35.name == "pc-q35-\(binary.version.release)")
        #expect(q35.alias == "q35")
        #expect(q35.tier == .versioned)
        #expect(q35.version == MachineVersion(binary.version.major, binary.version.minor))
        #expect(q35.tierReason.contains("newer QEMU"))
        #expect(binary.machineType("pc")?.name == "pc-i440fx-\(binary.version.release)")
        // Point releases keep their release's promise: pc-q35-4.0.1 is versioned 4.0.
        #expect(QEMUMachineType.version(in: "pc-q35-4.0.1") == MachineVersion(4, 0))
        #expect(binary.machineType("isapc")?.tier == .unversioned)
        // QEMU deprecates old versioned types; that is data on the type, not a tier.
        #expect(binary.machineTypes.contains { $0.deprecated && $0.tier == .versioned })
    }

    @Test(.enabled(if: Installed.xtensa != nil, "needs qemu-system-xtensa (qemu-system-misc)"))
    func aMachineWhoseDefaultDevicesBlockMigrationIsTierNone() throws {
        let binary = try Self.discovery.probe(binary: Installed.xtensa!)
        let sim = try #require(binary.machineType("sim"))
        #expect(sim.tier == .none)
        #expect(sim.blockers == [QEMUMigrationBlocker(device: "cpu", reason: "non-migratable device: cpu")])
        #expect(sim.tierReason.contains("cpu (non-migratable device: cpu)"))
    }

    @Test(.enabled(if: Installed.qemu("qemu-system-x86_64-microvm") != nil, "needs Debian's qemu-system-x86_64-microvm"))
    func aBinaryWithoutASandboxIsStillProbed() throws {
        // Debian's microvm build has no seccomp: it is probed and run without -sandbox.
        let binary = try Self.discovery.probe(binary: Installed.qemu("qemu-system-x86_64-microvm")!)
        #expect(!binary.sandbox)
        #expect(binary.arch == "x86_64")
        #expect(binary.machineType("microvm")?.probeError == nil)
        // It lists the q35 types it cannot start (no VGA): tier from the name, and why.
        #expect(binary.machineType("q35")?.probeError?.contains("VGA") == true)
    }

    @Test(.enabled(if: Installed.riscv64 != nil, "needs qemu-system-riscv64 (qemu-system-misc)"))
    func aConfiguredDeviceQEMUMarksUnmigratableIsABlocker() throws {
        // QEMU 7.2's NVMe controller registers an unmigratable VMState.
        let blockers = try Self.discovery.blockers(
            binary: Installed.riscv64!, machineType: "virt",
            devices: ["nvme,serial=emupanel"])
        #expect(blockers.count == 1)
        #expect(blockers.first?.device?.hasSuffix("/nvme") == true)
        #expect(try Self.discovery.blockers(binary: Installed.riscv64!, machineType: "virt", devices: []) == [])
    }

    @Test(.enabled(if: Installed.riscv64 != nil, "needs qemu-system-riscv64 (qemu-system-misc)"))
    func theProbeIsCachedPerBinaryAndRedoneWhenTheBinaryChanges() throws {
        let expected = try Self.riscv64.get()
        let again = QEMUDiscovery(cacheDirectory: Self.cache.path)
        #expect(try again.probe(binary: Installed.riscv64!) == expected)
        #expect(again.qemuStarts == 0)
        // A record whose key no longer matches the file (an upgraded QEMU) is probed again.
        let scratch = Scratch("stale-cache")
        defer { scratch.remove() }
        let stale = QEMUDiscovery(cacheDirectory: scratch.path)
        _ = try stale.probe(binary: Installed.riscv64!)
        let record = try #require(
            try FileManager.default.contentsOfDirectory(atPath: scratch.path)
                .first { $0.hasSuffix(".json") })
        let recordPath = scratch.sub(record)
        let text = try String(contentsOfFile: recordPath, encoding: .utf8)
        let mtime = String(expected.identity.modificationTimeNanoseconds)
        try text.replacingOccurrences(of: mtime, with: "1").write(toFile: recordPath, atomically: true, encoding: .utf8)
        let fresh = QEMUDiscovery(cacheDirectory: scratch.path)
        #expect(try fresh.probe(binary: Installed.riscv64!) == expected)
        #expect(fresh.qemuStarts > 0)
    }

    @Test(.enabled(if: Installed.riscv64 != nil, "needs qemu-system-riscv64 (qemu-system-misc)"))
    func discoverListsTheBinariesOnPath() throws {
        let found = Self.discovery.discover(names: ["qemu-system-riscv64", "qemu-system-nonexistent"])
        #expect(found.binaries.map(\.name) == ["qemu-system-riscv64"])
        #expect(found.failures.isEmpty)
    }

    @Test(.enabled(if: Installed.riscv64 != nil, "needs qemu-system-riscv64 (qemu-system-misc)"))
    func vmstateDumpsAreQEMUsOwnAndCached() throws {
        let starts = Self.discovery.qemuStarts
        let dump = try Self.discovery.vmstateDump(binary: Installed.riscv64!, machineType: "virt")
        let json = try JSONValue.parse(dump)
        #expect(json["vmschkmachine"]?["Name"] == .string("virt"))
        #expect(json["goldfish_rtc"]?["Description"]?["name"] == .string("goldfish_rtc"))
        #expect(try Self.discovery.vmstateDump(binary: Installed.riscv64!, machineType: "virt") == dump)
        #expect(Self.discovery.qemuStarts <= starts + 1)
        // QEMU's own dump passes the checker against itself, both ways.
        #expect(try VMStateCheck.check(old: dump, new: dump).problems.isEmpty)
        #expect(throws: QEMUError.self) {
            try Self.discovery.vmstateDump(binary: Installed.riscv64!, machineType: "virt,accel=kvm")
        }
    }
}
