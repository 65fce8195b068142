// The Linux guest through the panel's API: created from the `linux` image with its own qcow2
// disk, driven at its shell through the console, snapshotted and restored the way libvirt's
// external snapshots go (a frozen overlay per snapshot, a fresh one per restore), and every
// file of the disk's chain accepted by qemu-img.
import Block
import Foundation
import HTTPTestSupport
import PanelCore
import PanelHTTP
import RISCV
import Testing

/// A Linux guest of one panel and its shell, typed into through `POST /console`.
struct LinuxShell {
    let panel: PanelFixture
    let id: String
    var next = 0
    static let prompt = "\r\n# "

    /// Waits until the console shows `needle` after the offset read so far; returns what came.
    @discardableResult
    mutating func wait(for needle: String, timeout: Double = 300) throws -> String {
        var text = ""
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let chunk = try panel.get("/api/v1/guests/\(id)/console?since=\(next)&wait=5").json()
            text += chunk["data"] as? String ?? ""
            next = chunk["next"] as? Int ?? next
            if text.contains(needle) { return text }
        }
        Issue.record("the console never showed \(needle.debugDescription): \(text.suffix(600).debugDescription)")
        throw CancellationError()
    }

    /// Mounts the disk again, so what follows reads the disk, not the page cache RAM brought along.
    mutating func remount() throws {
        try run("umount /mnt")
        try run("mount /dev/vda /mnt")
    }

    /// Types `command` and returns its output up to the next prompt.
    @discardableResult
    mutating func run(_ command: String) throws -> String {
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/console", json: ["data": command + "\n"]).status == 204)
        return try wait(for: Self.prompt, timeout: 120)
    }

    static var qemuImg: String? {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-img") ? "/usr/bin/qemu-img" : nil
    }

    /// `qemu-img check` on every file of the guest's disk directory: the failures, by file.
    static func checkImages(in directory: String) -> [String] {
        guard let tool = qemuImg else { return [] }
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".qcow2") }
        return files.compactMap { file in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = ["check", directory + "/" + file]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return file }
            process.waitUntilExit()
            return process.terminationStatus == 0 ? nil : file
        }
    }
}

@Suite("Linux guest with a disk", .serialized)
struct LinuxDiskSnapshotTests {
    static func linuxPanel() throws -> PanelFixture { try PanelFixture(machines: VirtMachineTypes.registry) }

    static let linuxBuilt: Bool = {
        guard let panel = try? linuxPanel(), let images = try? panel.get("/api/v1/images").json()["items"] as? [[String: Any]] else { return false }
        return images.contains { $0["id"] as? String == "linux" && $0["available"] as? Bool == true }
    }()

    func waitForTask(_ panel: PanelFixture, _ reply: RawHTTPConnection.Reply, timeout: Double = 180) throws -> [String: Any] {
        #expect(reply.status == 202, "\(reply.text)")
        let id = try #require((try reply.json()["task"] as? [String: Any])?["id"] as? String)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let task = try panel.get("/api/v1/tasks/\(id)").json()
            if let status = task["status"] as? String, ["succeeded", "failed", "cancelled"].contains(status) { return task }
            usleep(100_000)
        }
        Issue.record("task \(id) did not finish")
        return [:]
    }

    /// A Linux guest with a disk of `diskMiB`, started, its disk mounted at /mnt.
    func startedLinuxGuest(_ panel: PanelFixture, _ name: String, diskMiB: Int) throws -> (id: String, shell: LinuxShell) {
        let created = try panel.send(
            "POST", "/api/v1/guests",
            json: [
                "name": name, "image": "linux", "machineType": "virt", "memoryMiB": 128, "diskSizeBytes": diskMiB << 20,
            ])
        let id = try #require(try created.json()["id"] as? String, "\(created.text)")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/start").status == 200)
        var shell = LinuxShell(panel: panel, id: id)
        try shell.wait(for: LinuxShell.prompt)
        try shell.run("mount /dev/vda /mnt")
        return (id, shell)
    }

    /// Writes `text` to /mnt/`file` and syncs it to the disk.
    func write(_ text: String, to file: String, _ shell: inout LinuxShell) throws {
        try shell.run("echo \(text) > /mnt/\(file)")
        try shell.run("sync")
    }

    /// Takes (or with `restore`, restores) a snapshot through the API and waits for its task.
    func snapshot(_ panel: PanelFixture, _ id: String, _ name: String, restore: Bool = false) throws {
        let task = try waitForTask(
            panel,
            restore
                ? try panel.send("POST", "/api/v1/guests/\(id)/snapshots/\(name)/restore")
                : try panel.send("POST", "/api/v1/guests/\(id)/snapshots", json: ["name": name, "description": ""]))
        #expect(task["status"] as? String == "succeeded", "\(task)")
    }

    @Test func theLinuxImageIsListedWithItsDiskAndACreatedGuestGetsOne() throws {
        let panel = try Self.linuxPanel()
        let images = try #require(try panel.get("/api/v1/images").json()["items"] as? [[String: Any]])
        let linux = try #require(images.first { $0["id"] as? String == "linux" })
        #expect(linux["kernel"] as? String == "Image")
        #expect(linux["initrd"] as? String == "initramfs.cpio")
        let disk = try #require(linux["disk"] as? [String: Any])
        #expect(disk["sizeBytes"] as? Int == 256 << 20)
        #expect(disk["format"] as? String == "qcow2")
        guard Self.linuxBuilt else { return }
        let body: [String: Any] = ["name": "tux", "image": "linux", "machineType": "virt", "memoryMiB": 128, "diskSizeBytes": 64 << 20]
        #expect(
            try panel.send("POST", "/api/v1/guests", json: body.merging(["machineType": "virt-1.1"]) { $1 }).errorCode
                == "machine_type_without_disks")
        #expect(try panel.send("POST", "/api/v1/guests", json: body.merging(["diskSizeBytes": 1000]) { $1 }).errorCode == "invalid_disk_size")
        let created = try panel.send("POST", "/api/v1/guests", json: body)
        #expect(created.status == 201, "\(created.text)")
        let guest = try created.json()
        #expect(guest["machineType"] as? String == "virt-1.2")
        let disks = try #require(guest["disks"] as? [[String: Any]])
        #expect(disks.count == 1)
        #expect(disks.first?["id"] as? String == "vda")
        #expect(disks.first?["sizeBytes"] as? Int == 64 << 20)
        let id = try #require(guest["id"] as? String)
        let directory = panel.dataDir + "/guests/\(id)/disks"
        #expect(LinuxShell.checkImages(in: directory).isEmpty)
        // A second guest of the same name makes no disk.
        #expect(try panel.send("POST", "/api/v1/guests", json: body).errorCode == "name_taken")
        #expect(try FileManager.default.contentsOfDirectory(atPath: panel.dataDir + "/guests").count == 1)
        #expect(try panel.send("DELETE", "/api/v1/guests/\(id)").status == 204)
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    @Test(.enabled(if: LinuxImageAvailability.built))
    func theDemoGuestOfAFirstStartIsTheLinuxGuestWithItsDisk() throws {
        let panel = try PanelFixture(machines: VirtMachineTypes.registry) { $0.settings.demoGuest = true }
        let guests = try #require(try panel.get("/api/v1/guests").json()["items"] as? [[String: Any]])
        #expect(guests.count == 1)
        #expect(guests.first?["name"] as? String == "demo")
        #expect(guests.first?["image"] as? String == "linux")
        #expect(guests.first?["machineType"] as? String == "virt-1.2")
        #expect((guests.first?["disks"] as? [[String: Any]])?.first?["sizeBytes"] as? Int == 256 << 20)
    }

    @Test(.enabled(if: LinuxImageAvailability.built))
    func aFileWrittenBeforeASnapshotComesBackWithItsRestore() throws {
        let panel = try Self.linuxPanel()
        let guest = try startedLinuxGuest(panel, "tux", diskMiB: 64)
        let id = guest.id
        var shell = guest.shell
        let directory = panel.dataDir + "/guests/\(id)/disks"
        try write("first version", to: "note", &shell)
        try snapshot(panel, id, "first")
        let record = try panel.get("/api/v1/guests/\(id)/snapshots/first").json()
        let frozen = try #require((record["disks"] as? [[String: Any]])?.first?["overlay"] as? String)
        let afterSnapshot = try panel.get("/api/v1/guests/\(id)").json()
        let top = try #require((afterSnapshot["disks"] as? [[String: Any]])?.first?["overlay"] as? String)
        #expect(top != frozen, "the guest writes a new overlay after the snapshot")
        // The frozen layer is snapshot storage: GET /host counts it with the state file.
        var layer = stat()
        #expect(stat(directory + "/" + frozen, &layer) == 0)
        let stateBytes = try #require(record["sizeBytes"] as? Int)
        let counts = try #require(try panel.get("/api/v1/host").json()["counts"] as? [String: Any])
        #expect(counts["snapshotBytes"] as? Int == stateBytes + Int(layer.st_blocks) * 512, "\(counts)")

        try write("second version", to: "note", &shell)
        #expect(try shell.run("cat /mnt/note").contains("second version"))
        try snapshot(panel, id, "first", restore: true)
        try shell.remount()
        let read = try shell.run("cat /mnt/note")
        #expect(read.contains("first version") && !read.contains("second version"), "\(read)")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(!files.contains(top), "the overlay the restore discarded is gone")
        #expect(files.contains(frozen))

        // Deleting the snapshot streams its layer into the running guest's top: nothing it reads changes.
        #expect(try panel.send("DELETE", "/api/v1/guests/\(id)/snapshots/first").status == 204)
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: directory)).contains(frozen))
        try shell.remount()
        #expect(try shell.run("cat /mnt/note").contains("first version"))
        try shell.run("umount /mnt")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
        #expect(LinuxShell.checkImages(in: directory).isEmpty)
    }
}

extension LinuxDiskSnapshotTests {
    @Test(.enabled(if: LinuxImageAvailability.built))
    func theDiskMovesWithALiveMigrationAndSnapshotsWorkThere() throws {
        let source = try Self.linuxPanel()
        let destination = try Self.linuxPanel()
        let guest = try startedLinuxGuest(source, "mover", diskMiB: 64)
        let id = guest.id
        var shell = guest.shell
        try write("written on the source", to: "origin", &shell)
        // A snapshot first: the chain that moves has a frozen layer besides the base.
        try snapshot(source, id, "s")
        try write("after the snapshot", to: "later", &shell)

        let task = try waitForTask(
            source,
            try source.send(
                "POST", "/api/v1/guests/\(id)/migrate",
                json: [
                    "target": ["url": "http://127.0.0.1:\(destination.port)", "token": PanelFixture.token]
                ]))
        #expect(task["status"] as? String == "succeeded", "\(task)")
        let disk = try #require((task["detail"] as? [String: Any])?["disk"] as? [String: Any], "\(task)")
        let total = try #require(disk["total"] as? Int)
        #expect(total > 0 && disk["transferred"] as? Int == total && disk["remaining"] as? Int == 0)
        #expect(try source.get("/api/v1/guests/\(id)").json()["state"] as? String == "migrated")

        let moved = try #require((try destination.get("/api/v1/guests").json()["items"] as? [[String: Any]])?.first)
        let movedID = try #require(moved["id"] as? String)
        #expect((moved["disks"] as? [[String: Any]])?.first?["sizeBytes"] as? Int == 64 << 20)
        var there = LinuxShell(panel: destination, id: movedID)
        // Read from the disk that arrived, not from the page cache that came with RAM.
        try there.remount()
        #expect(try there.run("cat /mnt/origin").contains("written on the source"))
        #expect(try there.run("cat /mnt/later").contains("after the snapshot"))

        // The same file test on the destination: write, snapshot, change, restore, read the first version.
        try write("first version", to: "note", &there)
        try snapshot(destination, movedID, "first")
        try write("second version", to: "note", &there)
        try snapshot(destination, movedID, "first", restore: true)
        try there.remount()
        let read = try there.run("cat /mnt/note")
        #expect(read.contains("first version") && !read.contains("second version"), "\(read)")
        try there.run("umount /mnt")
        #expect(try destination.send("POST", "/api/v1/guests/\(movedID)/stop").status == 200)
        #expect(LinuxShell.checkImages(in: destination.dataDir + "/guests/\(movedID)/disks").isEmpty)
        #expect(LinuxShell.checkImages(in: source.dataDir + "/guests/\(id)/disks").isEmpty)
    }
}

extension LinuxDiskSnapshotTests {
    /// Two snapshots and a restore of the older: its layer then backs two images (the newer
    /// snapshot's layer and the fresh top), so deleting it keeps the file; deleting the newer one
    /// too leaves it one child, into which it is streamed.
    @Test(.enabled(if: LinuxImageAvailability.built))
    func aLayerTwoImagesNeedOutlivesItsSnapshot() throws {
        let panel = try Self.linuxPanel()
        let guest = try startedLinuxGuest(panel, "forks", diskMiB: 32)
        let id = guest.id
        var shell = guest.shell
        let directory = panel.dataDir + "/guests/\(id)/disks"
        func layer(_ name: String) throws -> String {
            try #require((try panel.get("/api/v1/guests/\(id)/snapshots/\(name)").json()["disks"] as? [[String: Any]])?.first?["overlay"] as? String)
        }
        for name in ["a", "b"] {
            try write("version \(name)", to: "note", &shell)
            try snapshot(panel, id, name)
        }
        let (layerA, layerB) = (try layer("a"), try layer("b"))
        try snapshot(panel, id, "a", restore: true)
        #expect(try panel.send("DELETE", "/api/v1/guests/\(id)/snapshots/a").status == 204)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).contains(layerA), "b's layer and the top both need it")
        #expect(try panel.send("DELETE", "/api/v1/guests/\(id)/snapshots/b").status == 204)
        let left = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".qcow2") }.sorted()
        #expect(!left.contains(layerA) && !left.contains(layerB))
        #expect(left.count == 2, "the base and the top: \(left)")
        try shell.remount()
        #expect(try shell.run("cat /mnt/note").contains("version a"))
        try shell.run("umount /mnt")
        #expect(try panel.send("POST", "/api/v1/guests/\(id)/stop").status == 200)
        #expect(LinuxShell.checkImages(in: directory).isEmpty)
    }
}

extension LinuxDiskSnapshotTests {
    /// What a crash between a freeze and its record leaves — an overlay no record names — and a
    /// copy's temporary file are tidied at the next start; the guest's own files are kept.
    @Test(.enabled(if: LinuxImageAvailability.built))
    func aRestartTidiesDiskFilesNoRecordNames() throws {
        let dataDir = NSTemporaryDirectory() + "emupanel-disks-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        var id = ""
        var directory = ""
        var kept: [String] = []
        do {
            let panel = try PanelFixture(machines: VirtMachineTypes.registry) { $0.settings.dataDir = dataDir }
            let created = try panel.send(
                "POST", "/api/v1/guests",
                json: [
                    "name": "tidy", "image": "linux", "machineType": "virt", "memoryMiB": 128, "diskSizeBytes": 16 << 20,
                ])
            id = try #require(try created.json()["id"] as? String)
            directory = dataDir + "/guests/\(id)/disks"
            kept = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
            let top = try #require((try created.json()["disks"] as? [[String: Any]])?.first?["overlay"] as? String)
            try QCOW2Image.create(path: directory + "/vda.0badf00d.qcow2", backingFile: top)
            #expect(FileManager.default.createFile(atPath: directory + "/.vda.1234abcd.qcow2.partial", contents: Data([1, 2, 3])))
        }
        let panel = try PanelFixture(machines: VirtMachineTypes.registry) { $0.settings.dataDir = dataDir }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == kept)
        #expect(try panel.get("/api/v1/guests/\(id)").json()["name"] as? String == "tidy")
    }
}

enum LinuxImageAvailability {
    static var built: Bool { LinuxDiskSnapshotTests.linuxBuilt }
}
