import Block
import Foundation
import RISCV
import Synchronization

/// The qcow2 files of one guest's disks (DiskLayout) and the chain edits libvirt's external
/// snapshots make: a new guest's disk, an overlay started over a layer, and the removal of
/// layers no snapshot needs (kept while two images back onto them, streamed into their only
/// child otherwise). Every file written passes `qemu-img check`.
struct GuestDiskFiles: Sendable {
    let layout: DiskLayout

    init(guestDirectory: String) { layout = DiskLayout(directory: guestDirectory + "/disks") }

    func drives(_ disks: [GuestDisk]) -> [DriveConfiguration] {
        disks.map { DriveConfiguration(path: layout.path($0.overlay)) }
    }

    /// A new guest's disk from `template`: the file system made on a sparse raw file, converted
    /// into `<disk>.base.qcow2` (only its data clusters allocated), under an empty top overlay.
    func create(_ template: DiskTemplate, sizeBytes: Int64) throws -> [GuestDisk] {
        try FileManager.default.createDirectory(
            atPath: layout.directory, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        let id = GuestDisk.id(forDrive: 0)
        let base = layout.path(layout.baseName(id))
        if let filesystem = template.filesystem {
            let raw = layout.path(".\(id).raw-partial")
            unlink(raw)
            defer { unlink(raw) }
            guard FileManager.default.createFile(atPath: raw, contents: nil), truncate(raw, off_t(sizeBytes)) == 0 else {
                throw PanelError(.invalid, code: "disk_creation_failed", message: "could not make a \(sizeBytes)-byte file for the disk")
            }
            try FileSystemMaker.make(filesystem, on: raw, label: id)
            try QCOW2Image.create(path: base, copying: try RawImage(path: raw))
        } else {
            try QCOW2Image.create(path: base, sizeBytes: UInt64(sizeBytes))
        }
        let top = layout.newLayerName(id)
        try QCOW2Image.create(path: layout.path(top), backingFile: layout.baseName(id))
        return [GuestDisk(id: id, sizeBytes: sizeBytes, overlay: top)]
    }

    /// For each disk, a new empty overlay over `layers[i]` (a file of this directory): the new
    /// tops, not yet opened. A failure removes the overlays made so far.
    func startOverlays(_ disks: [GuestDisk], over layers: [String]) throws -> [GuestDisk] {
        var made: [GuestDisk] = []
        do {
            for (disk, layer) in zip(disks, layers) {
                var top = disk
                top.overlay = layout.newLayerName(disk.id)
                try QCOW2Image.create(path: layout.path(top.overlay), backingFile: layer)
                made.append(top)
            }
        } catch {
            remove(made.map(\.overlay))
            throw error
        }
        return made
    }

    func remove(_ names: [String]) {
        for name in names { unlink(layout.path(name)) }
    }

    /// Syncs files written through another handle (a frozen top the machine wrote unsynced).
    func sync(_ names: [String]) {
        for name in names {
            let fd = open(layout.path(name), O_RDONLY | O_CLOEXEC)
            if fd >= 0 { fsync(fd); close(fd) }
        }
    }

    /// The backing file each qcow2 file of the directory names (nil for none, or one outside it).
    func backingNames() -> [String: String?] {
        var names: [String: String?] = [:]
        for file in layout.files() {
            names[file] = (try? QCOW2Image.header(of: layout.path(file)))?.backingFile
        }
        return names
    }

    /// Removes the overlays nothing needs: one that neither a snapshot (`frozen`) nor the guest
    /// (`tops`) names goes when no file backs onto it, and is streamed into its only child first
    /// when one does (block-stream: the child reads the same before and after). One with two or
    /// more children stays. `editTop` performs the child's edit on the guest's CPU thread when the
    /// child is the top a running machine writes. Returns the names removed.
    @discardableResult
    func collect(
        frozen: Set<String>, tops: [GuestDisk],
        editTop: (_ drive: Int, _ body: @escaping @Sendable (QCOW2Image) throws -> Void) throws -> Bool
    ) throws -> [String] {
        var removed: [String] = []
        var changed = true
        while changed {
            changed = false
            let backing = backingNames()
            let needed = frozen.union(tops.map(\.overlay))
            for (name, _) in backing.sorted(by: { $0.key < $1.key })
            where !needed.contains(name)
                && tops.contains(where: { layout.isOverlay(name, of: $0.id) })
            {
                let children = backing.filter { $0.value == name }.map(\.key)
                guard children.count <= 1 else { continue }
                if let child = children.first {
                    let merge: @Sendable (QCOW2Image) throws -> Void = { image in
                        guard let layer = image.backing as? QCOW2Image else { return }
                        for offset in try layer.allocatedClusters() { try image.pullFromBacking(clusterAt: offset) }
                        try image.flush()
                        try image.dropBackingLayer()
                    }
                    var edited = false
                    if let drive = tops.firstIndex(where: { $0.overlay == child }) { edited = try editTop(drive, merge) }
                    if !edited { try merge(try QCOW2Image(path: layout.path(child), writable: true)) }
                }
                unlink(layout.path(name))
                removed.append(name)
                changed = true
                break
            }
        }
        return removed
    }
}

/// A snapshot's or a migration's freeze of the guest's disks: overlays made ahead over the
/// current tops, swapped in on the CPU thread while the guest is parked (`swap`), so the frozen
/// layers hold exactly the disk of the state streamed.
final class DiskFreeze: Sendable {
    let files: GuestDiskFiles
    /// The tops frozen, and the overlays that follow them.
    let frozen: [GuestDisk]
    let next: [GuestDisk]
    private let swapped = Atomic<Bool>(false)

    init(files: GuestDiskFiles, disks: [GuestDisk]) throws {
        self.files = files
        frozen = disks
        next = try files.startOverlays(disks, over: disks.map(\.overlay))
    }

    var happened: Bool { swapped.load(ordering: .acquiring) }

    /// On the CPU thread, guest parked: the machine writes the new overlays from here on.
    func swap(_ machine: VirtMachine) throws {
        guard !next.isEmpty else { return }
        let opened = try next.map { try QCOW2Image(path: files.layout.path($0.overlay)) }
        for (drive, image) in opened.enumerated() { try machine.replaceDisk(drive, with: image) }
        swapped.store(true, ordering: .releasing)
    }

    /// After the stream, either way: the frozen tops synced, or the unused overlays removed.
    func settle() {
        if happened { files.sync(frozen.map(\.overlay)) } else { files.remove(next.map(\.overlay)) }
    }
}

extension GuestRegistry {
    /// Removes the disk layers no snapshot and no top of the guest needs (GuestDiskFiles.collect);
    /// a top the guest's machine writes is edited on its CPU thread.
    @discardableResult
    func collectDiskLayers(of id: String) throws -> [String] {
        let guest = try store.get(id)
        guard !guest.disks.isEmpty else { return [] }
        let frozen = Set(try snapshots.all(guestId: id).flatMap { $0.disks.map(\.overlay) })
        return try diskFiles(id).collect(frozen: frozen, tops: guest.disks) { drive, body in
            guard let runtime = registeredRuntime(of: guest) else { return false }
            try runtime.editDisk(drive, body)
            return true
        }
    }
}

extension GuestRegistry {
    /// `collectDiskLayers` where its failure must not fail the caller (the work it tidies up after
    /// is done): logged, and the next collection or start-up recovery tries again.
    func collectDiskLayersLogged(of id: String) {
        do {
            try collectDiskLayers(of: id)
        } catch {
            logger.warning("could not remove the unneeded disk layers of guest \(id)", metadata: ["error": "\(error)"])
        }
    }

    /// Records the tops a freeze made the machine write, whatever failed after it.
    func recordTops(_ tops: [GuestDisk], of id: String) {
        do {
            try store.update(id) { $0.disks = tops }
        } catch {
            logger.error("could not record the new disk tops of guest \(id)", metadata: ["error": "\(error)", "tops": "\(tops.map(\.overlay))"])
        }
    }
}

struct DiskEditError: Error, CustomStringConvertible {
    var description: String { "the guest's disk is not the qcow2 image its record names" }
}
