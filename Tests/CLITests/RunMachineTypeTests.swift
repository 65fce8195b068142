// `emupanel run --machine NAME` builds that machine type's board: sandbox-hostrng maps the
// host entropy source (and refuses snapshots before the guest runs), virt-1.0 and virt-1.1
// show their UART FIFO depths, and release 1.0's frozen stream continues under this release.
import Foundation
import Testing

@Suite("emupanel run and machine types")
struct RunMachineTypeTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static func guest(_ name: String) -> String { root.appendingPathComponent("guests/" + name).path }

    @Test func sandboxHostRNGRunsAGuestReadingTheDevice() throws {
        let result = try emupanel("run", "--machine", "sandbox-hostrng", "--bios", "none", "--kernel", Self.guest("hostrng.elf"))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("hostrng: status 1"))
        #expect(result.stdout.contains("hostrng: 8 reads, 8 distinct"))
        let without = try emupanel("run", "--machine", "virt", "--bios", "none", "--kernel", Self.guest("hostrng.elf"))
        #expect(without.status == 99)
    }

    @Test func sandboxHostRNGRefusesASnapshotNamingTheBlocker() throws {
        let path = NSTemporaryDirectory() + "emupanel-hostrng-\(UUID().uuidString).qevm"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try emupanel(
            "run", "--machine", "sandbox-hostrng", "--bios", "none", "--kernel", Self.guest("hostrng.elf"),
            "--save-at", "100", "--save", path)
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)  // refused before the guest printed anything
        #expect(result.stderr.contains("rng0") && result.stderr.contains("/dev/urandom"))
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func machineVersionsShowTheirFIFODepth() throws {
        let old = try emupanel("run", "--machine", "virt-1.0", "--bios", "none", "--kernel", Self.guest("uartfifo.elf"))
        #expect(old.status == 0)
        #expect(old.stdout.contains("receive FIFO 16 bytes"))
        let new = try emupanel("run", "--machine", "virt", "--bios", "none", "--kernel", Self.guest("uartfifo.elf"))
        #expect(new.status == 0)
        #expect(new.stdout.contains("receive FIFO 64 bytes"))
    }

    @Test func frozenRelease10StreamContinuesAndChecksBothWays() throws {
        let frozen = Self.root.appendingPathComponent("Tests/Fixtures/releases/1.0").path
        let result = try emupanel(
            "run", "--machine", "virt-1.0", "--bios", "none", "--kernel", Self.guest("timer.elf"),
            "--memory", "16", "--icount", "--load", frozen + "/virt-1.0.qevm")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("timer: lost ticks 0, time went backwards 0"))
        let dump = try emupanel("vmstate", "dump", "--machine", "virt-1.0")
        let current = NSTemporaryDirectory() + "emupanel-virt-1.0-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: current) }
        try dump.stdout.write(toFile: current, atomically: true, encoding: .utf8)
        let forward = try emupanel("vmstate", "check", frozen + "/virt-1.0.vmstate.json", current)
        let backward = try emupanel("vmstate", "check", current, frozen + "/virt-1.0.vmstate.json")
        #expect(forward.status == 0 && forward.stdout.isEmpty, "\(forward.stdout)")
        #expect(backward.status == 0 && backward.stdout.isEmpty, "\(backward.stdout)")
    }

    /// The board maps at most 2048 MiB: `run` refuses more up front (it once allowed 4096, which the
    /// board then refused), and takes the maximum itself.
    @Test func memoryRangeIsTheBoards() throws {
        let over = try emupanel("run", "--machine", "virt", "--bios", "none", "--kernel", Self.guest("uartfifo.elf"), "--memory", "2049")
        #expect(over.status == 64)
        #expect(over.stderr.contains("1...2048"), "\(over.stderr)")
        let most = try emupanel("run", "--machine", "virt", "--bios", "none", "--kernel", Self.guest("uartfifo.elf"), "--memory", "2048")
        #expect(most.status == 0, "\(most.stderr)")
    }
}
