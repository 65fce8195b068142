import EmulatorCore
import Foundation
import RISCV

/// A representative value of each type the API answers with, every optional field set where the
/// type allows: the HTTP adapter learns the document's schemas by encoding these (and shows them
/// as examples), so the schemas come from the types themselves.
public enum APIExamples {
    static let date = Date(timeIntervalSince1970: 1_796_000_000)

    public static let guest = GuestRecord(
        id: "g-1a2b3c4d", name: "demo", image: "uboot", machineType: "virt-1.1", memoryMiB: 128, state: .running,
        icount: false, resumeAtStart: false, managedSave: "xxh128:0123456789abcdef0123456789abcdef", pausedAtSave: false,
        currentSnapshot: "before-upgrade", incoming: false, peer: "http://127.0.0.1:8081", peerGuestId: "g-5e6f7a8b",
        migrationId: "0123456789abcdef", disks: [GuestDisk(id: "vda", sizeBytes: 256 << 20, overlay: "vda.0a1b2c3d.qcow2")],
        createdAt: date, updatedAt: date)

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

    public static let machineTypeSummary = MachineTypeSummary(VirtMachineTypes.newest, deprecation: "older than 3 years")

    public static let machineTypeDetail = MachineTypeDetail(
        try! VirtMachineTypes.registry.resolve("sandbox-hostrng"), requested: "sandbox-hostrng", policy: .qemu)

    public static let compatibility = CompatibilityDocument(
        CompatibilityMatrix(registry: VirtMachineTypes.registry, currentRelease: Release.current, frozen: []))

    public static let verdict = IncomingMigrations.Verdict(
        go: true, release: Release.current, checks: [.init(name: "machine type", ok: true, detail: "virt-1.1 is known here")])

    public static let ticket = IncomingMigrations.Ticket(ticket: String(repeating: "0f", count: 32), port: 41_234, release: Release.current)

    public static let counts: HostCounts = {
        var counts = HostCounts()
        counts.guests = 1
        return counts
    }()
}
