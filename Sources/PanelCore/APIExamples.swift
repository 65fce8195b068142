import EmulatorCore
import Foundation
import QEMUBackend
import RISCV

/// A representative value of each type the API answers with, every optional field set where the
/// type allows: the HTTP adapter learns the document's schemas by encoding these (and shows them
/// as examples), so the schemas come from the types themselves.
public enum APIExamples {
    static let date = Date(timeIntervalSince1970: 1_796_000_000)

    public static let guest = GuestRecord(
        id: "g-1a2b3c4d", name: "demo", image: "uboot", machineType: "virt", memoryMiB: 128, state: .running,
        icount: false, resumeAtStart: false, managedSave: "xxh128:0123456789abcdef0123456789abcdef", pausedAtSave: false,
        currentSnapshot: "before-upgrade", incoming: false, peer: "http://127.0.0.1:8081", peerGuestId: "g-5e6f7a8b",
        migrationId: "0123456789abcdef", disks: [GuestDisk(id: "vda", sizeBytes: 256 << 20, overlay: "vda.0a1b2c3d.qcow2")],
        createdAt: date, updatedAt: date, backend: .qemu, binary: "qemu-system-riscv64")

    public static let task: TaskInfo = {
        var task = TaskInfo(id: "t-0123456789ab", kind: "migrate", guestId: guest.id)
        task.status = .running
        task.progress = 0.5
        task.error = "destination: release 1.0 here does not know virt-1.1"
        task.detail = ["status": "active"]
        return task
    }()

    public static let snapshot = SnapshotView(
        SnapshotRecord(
            guestId: guest.id, name: "before-upgrade", parent: "fresh", description: "U-Boot at its prompt",
            machineType: "virt-1.1", release: Release.current, sizeBytes: 17_825_792, checksum: String(repeating: "ab", count: 32),
            file: "before-upgrade.qevm", createdAt: date, disks: [SnapshotDisk(id: "vda", overlay: "vda.4e5f6a7b.qcow2")]), current: true)

    public static let image: ImageCatalog.Image = {
        var image = ImageCatalog.Image(
            id: "linux", name: "Linux 6.1", description: "Boots to a shell; a virtio disk with ext4.", minimumMemoryMiB: 64,
            defaultMemoryMiB: 128, available: false, unavailableReason: "the Linux guest is not built (make linux)",
            biosPath: nil, kernelPath: "")
        image.kernel = "Image"
        image.initrd = "initramfs.cpio"
        image.commandLine = LinuxImage.commandLine
        image.disk = LinuxImage.disk
        return image
    }()

    public static let consoleChunk = ConsoleBuffer.ConsoleChunk(data: "=> ", next: 1024, truncated: false)

    public static let event = PanelEvent(
        seq: 7, epoch: "0a1b2c3d", time: "2026-12-03T20:00:00.000Z", type: "guest.state",
        subject: guest.id, data: ["state": "running"])

    public static let eventsPage = EventBus.EventsPage(items: [event], next: 7, truncated: false, epoch: "0a1b2c3d")

    /// A QEMU type, so the QEMU-only fields are in the schema too.
    public static let machineTypeSummary = MachineTypeSummary(qemuMachineType, of: qemuBinary)

    public static let machineTypeDetail: MachineTypeDetail = {
        var detail = MachineTypeDetail(try! VirtMachineTypes.registry.resolve("sandbox-hostrng"), requested: "sandbox-hostrng", policy: .qemu)
        // Set for QEMU types only; shown here so the document knows them.
        detail.binary = qemuBinary.name
        detail.qemuVersion = qemuBinary.version.description
        detail.probeError = "qemu-system-riscv64: Unable to load the RISC-V firmware"
        return detail
    }()

    static let qemuMachineType = QEMUMachineType(
        name: "pc-q35-7.2", alias: "q35", deprecated: false,
        blockers: [QEMUMigrationBlocker(qemuReason: "non-migratable device: 0000:00:03.0/nvme")],
        probeError: "qemu-system-x86_64: -device nvme: drive property not set")

    static let qemuBinary = QEMUBinary(
        path: "/usr/bin/qemu-system-x86_64",
        identity: QEMUBinaryIdentity(path: "/usr/bin/qemu-system-x86_64", size: 1, modificationTimeNanoseconds: 0),
        version: QEMUVersion(major: 7, minor: 2, micro: 22, package: "Debian 1:7.2+dfsg-7+deb12u18+b3"),
        machineTypes: [qemuMachineType], sandbox: true)

    public static let qemuHost = QEMUHostSummary(
        status: .ready,
        binaries: [
            .init(
                name: "qemu-system-x86_64", path: "/usr/bin/qemu-system-x86_64", version: "7.2.22",
                package: "Debian 1:7.2+dfsg-7+deb12u18+b3", arch: "x86_64", sandbox: true, machineTypes: 58)
        ],
        failures: [.init(path: "/usr/bin/qemu-system-alpha", reason: "exited with status 1")])

    public static let compatibility: CompatibilityDocument = {
        var document = CompatibilityDocument(
            CompatibilityMatrix(registry: VirtMachineTypes.registry, currentRelease: Release.current, frozen: []))
        // Set in QEMU's matrix only (`?backend=qemu`); shown here so the document knows them.
        document.unreachablePeers = ["b: cannot reach http://127.0.0.1:8081"]
        if !document.items.isEmpty {
            document.items[0].binary = "qemu-system-riscv64"
            document.items[0].arch = "riscv64"
        }
        return document
    }()

    public static let verdict = IncomingMigrations.Verdict(
        go: true, release: Release.current, checks: [.init(name: "machine type", ok: true, detail: "virt-1.1 is known here")])

    public static let ticket = IncomingMigrations.Ticket(ticket: String(repeating: "0f", count: 32), port: 41_234, release: Release.current)

    public static let counts: HostCounts = {
        var counts = HostCounts()
        counts.guests = 1
        return counts
    }()
}
