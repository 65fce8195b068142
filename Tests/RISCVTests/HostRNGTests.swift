// The tier-none machine type: sandbox-hostrng carries host-rng, which reads the host's
// /dev/urandom through an open descriptor. Its tier is computed as `none` with the device
// as blocker, snapshots are refused before a byte is written, only it maps the device,
// and a guest reads entropy from it.
import EmulatorCore
import Testing
import VMState

@testable import RISCV

@Suite struct HostRNGTests {
    let hostrng = try! VirtMachineTypes.registry.resolve("sandbox-hostrng")

    @Test func tierIsNoneWithTheDeviceAsBlocker() throws {
        #expect(hostrng.tier == .none)
        #expect(hostrng.version == nil)
        let blocker = try #require(hostrng.blockers.first)
        #expect(hostrng.blockers.count == 1)
        #expect(blocker.deviceID == "rng0")
        #expect(blocker.driver == "host-rng")
        #expect(blocker.reason.contains("/dev/urandom"))
        #expect(hostrng.tierReason.contains("rng0") && hostrng.tierReason.contains("/dev/urandom"))
        // Every other type keeps its tier: the device is what makes it none.
        #expect(try VirtMachineTypes.registry.resolve("sandbox").tier == .unversioned)
    }

    @Test func snapshotIsRefusedUpFrontNamingTheBlocker() throws {
        let machine = try VirtMachine(
            configuration: MachineConfiguration(memoryMiB: 2, clock: .defaultICount),
            machineType: hostrng)
        let state = try machine.machineState()
        let sink = MemorySink()
        do {
            try state.saveSnapshot(to: sink)
            Issue.record("a tier-none machine was snapshotted")
        } catch let error as EmulatorCore.MachineError {
            guard case .notMigratable(let name, let blockers) = error else { throw error }
            #expect(name == "sandbox-hostrng")
            #expect(blockers.map(\.deviceID) == ["rng0"])
            #expect(error.description.contains("host-rng") && error.description.contains("/dev/urandom"))
        }
        #expect(sink.bytes.isEmpty)
        #expect(throws: EmulatorCore.MachineError.self) { try state.load(from: MemorySource([])) }
    }

    @Test func onlyItsMachineTypeMapsTheDevice() throws {
        let region = VirtMemoryMap[.hostRNG]
        let with = try VirtMachine(configuration: MachineConfiguration(memoryMiB: 2), machineType: hostrng)
        #expect(with.bus.read(region.base + HostRNG.status, size: 4) == HostRNG.statusReady)
        let a = with.bus.read(region.base + HostRNG.data, size: 8)
        let b = with.bus.read(region.base + HostRNG.data, size: 8)
        #expect(a != nil && a != b)
        #expect(with.bus.write(region.base + HostRNG.data, size: 4, value: 1))  // ignored, logged
        for name in ["virt-1.0", "virt-1.1", "sandbox"] {
            let type = try VirtMachineTypes.registry.resolve(name)
            let without = try VirtMachine(configuration: MachineConfiguration(memoryMiB: 2), machineType: type)
            #expect(without.bus.read(region.base + HostRNG.status, size: 4) == nil)
            #expect(!without.bus.write(region.base, size: 4, value: 0))
            #expect(!without.deviceTree.containsSubsequence(Array("emupanel,host-rng".utf8)))
        }
        #expect(with.deviceTree.containsSubsequence(Array("emupanel,host-rng".utf8)))
    }

    @Test func guestReadsEntropyOnlyWhereTheDeviceIs() throws {
        let result = try runGuest("hostrng.elf", machine: "sandbox-hostrng", icount: true)
        #expect(result.outcome == .passed)
        #expect(result.output.contains("hostrng: status 1"))
        #expect(result.output.contains("hostrng: 8 reads, 8 distinct"))
        // Without the device the first read is an access fault (mcause 5), like QEMU's unassigned memory.
        let faulted = try runGuest("hostrng.elf", machine: "virt", icount: true)
        #expect(faulted.outcome == .failed(code: 99))
        #expect(faulted.output.contains("mcause=5"))
    }
}

extension Array where Element == UInt8 {
    func containsSubsequence(_ needle: [UInt8]) -> Bool {
        guard needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { Array(self[$0..<$0 + needle.count]) == needle }
    }
}
