// Frozen releases (SPEC §2): Tests/Fixtures/releases/<release>/ holds each versioned
// type's `vmstate dump` and one snapshot stream, written once when the release was cut.
// They are never regenerated; this release must keep loading them, and the checker must
// pass both ways for every versioned type they share.
import EmulatorCore
import Foundation
import Headless
import Testing
import VMState

@testable import RISCV

enum Fixtures {
    static let releases = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/releases").path
    static func path(_ release: String, _ file: String) -> String { "\(releases)/\(release)/\(file)" }
    static func bytes(_ release: String, _ file: String) throws -> [UInt8] {
        [UInt8](try #require(FileManager.default.contents(atPath: path(release, file))))
    }

    /// The frozen 1.0 stream: timer.elf on virt-1.0, 16 MiB, --icount, saved at instruction 6000.
    static let streamInstruction: UInt64 = 6000
    static let streamGuest = "timer.elf"
    static let streamMemoryMiB = 16
}

@Suite(.serialized) struct ReleaseFixtureTests {
    let registry = VirtMachineTypes.registry

    /// Frozen fixtures are never regenerated: every file is listed in its release's SHA256SUMS
    /// and still has that hash (checked with coreutils' sha256sum, as a person would).
    @Test func frozenFilesNeverChange() throws {
        let releases = try FileManager.default.contentsOfDirectory(atPath: Fixtures.releases).filter { !$0.hasPrefix(".") }
        #expect(releases.contains("1.0"))
        for release in releases {
            let directory = Fixtures.releases + "/" + release
            let sums = try String(contentsOfFile: directory + "/SHA256SUMS", encoding: .utf8)
            let listed = Set(
                sums.split(separator: "\n").compactMap { $0.split(separator: " ", omittingEmptySubsequences: true).last.map(String.init) })
            let present = Set(try FileManager.default.contentsOfDirectory(atPath: directory)).subtracting(["SHA256SUMS"])
            #expect(listed == present, "release \(release): SHA256SUMS must list exactly the frozen files")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
            process.arguments = ["--check", "--strict", "--quiet", "SHA256SUMS"]
            process.currentDirectoryURL = URL(fileURLWithPath: directory)
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "a frozen file of release \(release) changed; frozen fixtures are never regenerated")
        }
    }

    /// Each frozen release has a dump and a stream for every versioned type it introduced or carried.
    @Test func release10FrozeEveryVersionedTypeItHad() throws {
        for type in registry.machineTypes where type.tier == .versioned && type.release == "1.0" {
            #expect(FileManager.default.fileExists(atPath: Fixtures.path("1.0", type.name + ".vmstate.json")))
            #expect(FileManager.default.fileExists(atPath: Fixtures.path("1.0", type.name + ".qevm")))
        }
    }

    /// Release 1.1 froze both versions it had: their dumps and a timer.elf stream each.
    @Test func release11FrozeEveryVersionedTypeItHad() throws {
        for name in ["virt-1.0", "virt-1.1"] {
            #expect(FileManager.default.fileExists(atPath: Fixtures.path("1.1", name + ".vmstate.json")))
            #expect(FileManager.default.fileExists(atPath: Fixtures.path("1.1", name + ".qevm")))
        }
    }

    /// Every frozen dump passes the checker both ways against this release's same type.
    @Test(arguments: [("1.0", "virt-1.0"), ("1.1", "virt-1.0"), ("1.1", "virt-1.1")])
    func checkerPassesBothWaysAgainstFrozenDumps(release: String, machine: String) throws {
        let frozen = try String(contentsOfFile: Fixtures.path(release, machine + ".vmstate.json"), encoding: .utf8)
        let current = try registry.resolve(machine).vmstateDump()
        #expect(try VMStateCheck.check(old: frozen, new: current).problems.isEmpty)
        #expect(try VMStateCheck.check(old: current, new: frozen).problems.isEmpty)
        // virt-1.2 added devices to the board, none to the versions before it.
        if release == "1.1" { #expect(current == frozen, "\(machine) changed since release 1.1") }
    }

    /// virt-1.2 is virt-1.1 plus QEMU's eight virtio-mmio transports, newest first in the
    /// device tree; the older versions map nothing there.
    @Test func virt12AddsTheVirtioTransportsAndOnlyIt() throws {
        let v12 = try registry.resolve("virt-1.2")
        let v11 = try registry.resolve("virt-1.1")
        #expect(try registry.resolve("virt").name == "virt-1.2")
        #expect(v12.tier == .versioned)
        #expect(v12.devices.map(\.id) == v11.devices.map(\.id) + (0..<8).reversed().map { "virtio-mmio\($0)" })
        let machine = try VirtMachine(configuration: MachineConfiguration(memoryMiB: 16), machineType: v12)
        #expect(machine.bus.read(0x1000_8000, size: 4) == 0x7472_6976)
        #expect(machine.bus.read(0x1000_8008, size: 4) == 0, "an empty slot is device 0")
        let old = try VirtMachine(configuration: MachineConfiguration(memoryMiB: 16), machineType: v11)
        #expect(old.bus.read(0x1000_8000, size: 4) == nil)
        #expect(throws: BoardError.tooManyDrives(machineType: "virt-1.1", drives: 1, slots: 0)) {
            try VirtMachine(
                configuration: MachineConfiguration(memoryMiB: 16, drives: [DriveConfiguration(path: "/nonexistent")]),
                machineType: v11)
        }
    }

    /// Each frozen 1.1 stream (timer.elf, 16 MiB, --icount, instruction 6000) loads into this
    /// release's type and finishes exactly as a straight run does.
    @Test(arguments: ["virt-1.0", "virt-1.1"])
    func frozen11StreamsLoadAndRunToTheEnd(machine: String) throws {
        let straightOut = OutputCollector()
        let straight = try makeMachine(
            RunOptions(
                machine: machine, bios: .none, kernel: Guests.path(Fixtures.streamGuest),
                memoryMiB: Fixtures.streamMemoryMiB, icount: true))
        straight.console = SerialConsole { straightOut.append($0) }
        #expect(straight.run(maxInstructions: Fixtures.streamInstruction) == .instructionLimit)
        let printed = straightOut.text.utf8.count
        #expect(straight.run(maxInstructions: 50_000_000) == .finisherPass)

        let stream = try Fixtures.bytes("1.1", machine + ".qevm")
        let out = OutputCollector()
        let machineType = try registry.resolve(machine)
        let restored = try VirtMachine(
            configuration: MachineConfiguration(memoryMiB: Fixtures.streamMemoryMiB, clock: .defaultICount),
            machineType: machineType)
        restored.console = SerialConsole { out.append($0) }
        let state = try restored.machineState()
        try state.preflight(snapshotTail: stream)
        try state.load(from: MemorySource(stream))
        restored.stateDidLoad()
        #expect(restored.hart.state.retired == Fixtures.streamInstruction)
        #expect(restored.run(maxInstructions: 50_000_000) == .finisherPass)
        #expect(out.text == String(decoding: Array(straightOut.text.utf8).dropFirst(printed), as: UTF8.self))
        #expect(restored.hart.state == straight.hart.state)
    }

    @Test func checkerPassesBothWaysBetweenFrozenAndCurrentVirt10() throws {
        let frozen = try String(contentsOfFile: Fixtures.path("1.0", "virt-1.0.vmstate.json"), encoding: .utf8)
        let current = try registry.resolve("virt-1.0").vmstateDump()
        let forward = try VMStateCheck.check(old: frozen, new: current)
        let backward = try VMStateCheck.check(old: current, new: frozen)
        #expect(forward.problems.isEmpty, "\(forward.problems)")
        #expect(backward.problems.isEmpty, "\(backward.problems)")
        // virt-1.1 carries the deeper FIFO: its dump lists serial/fifo-depth, virt-1.0's does not.
        #expect(try registry.resolve("virt-1.1").vmstateDump().contains("serial/fifo-depth"))
        #expect(!current.contains("serial/fifo-depth"))
    }

    /// Runs timer.elf on virt-1.0 as the freeze did; returns the output after instruction 6000.
    func straightRun() throws -> (after: String, exit: RunExit, hart: Hart.State) {
        let out = OutputCollector()
        let machine = try bootGuest(Fixtures.streamGuest, machine: "virt-1.0", icount: true, memoryMiB: Fixtures.streamMemoryMiB)
        machine.console = SerialConsole { out.append($0) }
        #expect(machine.run(maxInstructions: Fixtures.streamInstruction) == .instructionLimit)
        let before = out.text
        let exit = machine.run(maxInstructions: 50_000_000)
        return (String(out.text.dropFirst(before.count)), exit, machine.hart.state)
    }

    @Test func frozenStreamLoadsIntoCurrentVirt10AndRunsToTheEnd() throws {
        let straight = try straightRun()
        #expect(straight.exit == .finisherPass)

        let stream = try Fixtures.bytes("1.0", "virt-1.0.qevm")
        let out = OutputCollector()
        let virt10 = try registry.resolve("virt-1.0")
        let machine = try VirtMachine(
            configuration: MachineConfiguration(memoryMiB: Fixtures.streamMemoryMiB, clock: .defaultICount),
            machineType: virt10)
        machine.console = SerialConsole { out.append($0) }
        let state = try machine.machineState()
        try state.preflight(snapshotTail: stream)
        try state.load(from: MemorySource(stream))
        machine.stateDidLoad()
        #expect(machine.hart.state.retired == Fixtures.streamInstruction)
        #expect(machine.bus.uart0.state.fifoDepth == 16)
        #expect(machine.run(maxInstructions: 50_000_000) == .finisherPass)
        #expect(out.text == straight.after)
        #expect(!out.text.isEmpty)
        #expect(machine.hart.state == straight.hart)
    }

    /// A virt-1.1 stream (64-byte FIFO on, so serial/fifo-depth travels).
    func virt11Stream() throws -> [UInt8] {
        let machine = try bootGuest("timer.elf", machine: "virt-1.1", icount: true, memoryMiB: 16)
        #expect(machine.run(maxInstructions: 3000) == .instructionLimit)
        machine.bus.uart0.write(offset: UART16550.iirFCR, size: 1, value: 0x01)
        for byte in UInt8(1)...40 { machine.bus.uart0.receive(byte) }
        #expect(machine.bus.uart0.state.receiveFIFO.count == 40)
        let sink = MemorySink()
        try machine.machineState().saveSnapshot(to: sink)
        return sink.bytes
    }

    @Test func virt11StreamRoundTripsItsDeepFIFO() throws {
        let stream = try virt11Stream()
        let machine = try VirtMachine(
            configuration: MachineConfiguration(memoryMiB: 16, clock: .defaultICount),
            machineType: try registry.resolve("virt-1.1"))
        try machine.machineState().load(from: MemorySource(stream))
        #expect(machine.bus.uart0.state.fifoDepth == 64)
        #expect(machine.bus.uart0.state.receiveFIFO == Array(UInt8(1)...40))
    }

    @Test func virt11StreamIsRefusedAsVirt10NamingBothTypes() throws {
        let stream = try virt11Stream()
        let machine = try VirtMachine(
            configuration: MachineConfiguration(memoryMiB: 16, clock: .defaultICount),
            machineType: try registry.resolve("virt-1.0"))
        let before = machine.deviceStates
        do {
            try machine.machineState().load(from: MemorySource(stream))
            Issue.record("a virt-1.1 stream loaded as virt-1.0")
        } catch let error as VMStateError {
            #expect(error == .machineTypeMismatch(received: "virt-1.1", local: "virt-1.0"))
            #expect("\(error)".contains("virt-1.1") && "\(error)".contains("virt-1.0"))
        }
        #expect(machine.deviceStates == before)
    }

    /// Release 1.0's `serial` description as frozen (no subsections): forcing a 1.1 section with
    /// the deeper FIFO into it fails on the unknown subsection, by name.
    @Test func deepFIFOSectionForcedIntoTheRelease10DescriptionNamesTheSubsection() throws {
        guard case .vmstate(let current) = UART16550.migration else { Issue.record("UART lost its description"); return }
        let release10 = VMStateDescription<UART16550.State>(
            name: current.name, versionID: current.versionID, minimumVersionID: current.minimumVersionID,
            fields: current.fields, notMigrated: ["fifoDepth"])
        let frozen = try JSONValue.parse(String(contentsOfFile: Fixtures.path("1.0", "virt-1.0.vmstate.json"), encoding: .utf8))
        #expect(frozen["ns16550a"]?["Description"] == release10.dump(), "the test's 1.0 description is the frozen one")

        var state = UART16550.State()
        state.fcr = 0x01
        state.fifoDepth = 64
        state.receiveFIFO = Array(UInt8(1)...20)
        let sink = MemorySink()
        let writer = QEMUFileWriter(sink: sink)
        try current.save(state, to: writer)
        try writer.flush()

        var into = UART16550.State()
        #expect(throws: VMStateError.unknownSubsection(name: "serial/fifo-depth", parent: "serial", version: 1)) {
            try release10.load(&into, from: QEMUFileReader(source: MemorySource(sink.bytes)), versionID: 1)
        }
        var back = UART16550.State()
        try current.load(&back, from: QEMUFileReader(source: MemorySource(sink.bytes)), versionID: 1)
        #expect(back == state)
    }

    @Test func compatibilityMatrixShowsVirt10AcrossReleases() throws {
        let matrix = CompatibilityMatrix(
            registry: registry, currentRelease: "1.1",
            frozen: FrozenRelease.loadAll(from: Fixtures.releases))
        #expect(matrix.releases == ["1.0", "1.1"])
        func statuses(_ name: String) -> [CompatibilityMatrix.Status]? {
            matrix.rows.first { $0.machineType == name }?.cells.map(\.status)
        }
        #expect(statuses("virt-1.0") == [.compatible, .same])
        #expect(statuses("virt-1.1") == [.absent, .same])
        #expect(statuses("sandbox-hostrng") == [.blocked, .blocked])
    }
}

@Suite struct UARTFIFODepthTests {
    let registry = VirtMachineTypes.registry

    func uart(_ machine: String) throws -> UART16550 {
        try UART16550(properties: registry.resolve(machine).properties(of: "uart0"))
    }

    @Test func virt11HoldsSixtyFourVirt10Sixteen() throws {
        #expect(try registry.resolve("virt-1.0").properties(of: "uart0").uint("fifo-depth") == 16)
        #expect(try registry.resolve("virt-1.1").properties(of: "uart0").uint("fifo-depth") == 64)
        for (machine, depth, iir) in [("virt-1.0", 16, UInt64(0xc1)), ("virt-1.1", 64, UInt64(0xe1))] {
            let u = try uart(machine)
            u.write(offset: UART16550.iirFCR, size: 1, value: 0x01)
            for _ in 0..<100 { u.receive(0x55) }
            #expect(u.state.receiveFIFO.count == depth, "\(machine)")
            #expect(u.read(offset: UART16550.iirFCR, size: 1) == iir, "\(machine)")
            u.reset()
            #expect(Int(u.state.fifoDepth) == depth, "reset keeps the machine's depth")
        }
    }

    @Test func triggerLevelsScaleWithTheDeepFIFO() throws {
        let u = try uart("virt-1.1")
        u.write(offset: UART16550.iirFCR, size: 1, value: 0x41)  // trigger level 1 of 4: 16 on a 64-byte FIFO
        u.write(offset: UART16550.ier, size: 1, value: 0x01)
        for _ in 0..<15 { u.receive(1) }
        #expect(u.read(offset: UART16550.iirFCR, size: 1) & 0x0f == 0x0c)  // character timeout below the level
        u.receive(1)
        #expect(u.read(offset: UART16550.iirFCR, size: 1) & 0x0f == 0x04)  // received data available
    }

    @Test func aDepthOtherThan16Or64IsRefused() throws {
        let props = try DeviceProperties.resolve(
            driver: "ns16550a", definitions: UART16550.properties,
            compat: [CompatProperty(driver: "ns16550a", property: "fifo-depth", value: "32")])
        #expect(throws: EmulatorCore.MachineError.self) { try UART16550(properties: props) }
    }

    @Test func guestSeesTheDepthOfItsMachineVersion() throws {
        let old = try runGuest("uartfifo.elf", machine: "virt-1.0", icount: true)
        #expect(old.outcome == .passed)
        #expect(old.output == "uartfifo: IIR c1, receive FIFO 16 bytes\r\n")
        let new = try runGuest("uartfifo.elf", machine: "virt-1.1", icount: true)
        #expect(new.outcome == .passed)
        #expect(new.output == "uartfifo: IIR e1, receive FIFO 64 bytes\r\n")
        #expect(try runGuest("uartfifo.elf", machine: "virt", icount: true).output == new.output)
    }
}
