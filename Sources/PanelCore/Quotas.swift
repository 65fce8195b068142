import Foundation

/// The host's quotas (`limits` in the configuration) and the one description of every limit a
/// client must respect: `GET /host` answers it, and the UI and the command line read it there.
public struct Quotas: Sendable {
    let limits: PanelSettings.Limits
    let registry: GuestRegistry

    /// What `GET /host` shows as `limits`.
    public struct Description: Sendable, Encodable, Equatable {
        public struct Range: Sendable, Encodable, Equatable {
            public var min: Int
            public var max: Int
            public init(min: Int, max: Int) { self.min = min; self.max = max }
        }
        /// Memory a guest may have on this host's built-in core.
        public var memoryMiB: Range
        /// Memory a guest may have, by backend (`builtin`, `qemu` when it is on).
        public var backendMemoryMiB: [String: Range]
        public var maxGuests: Int?
        public var maxTotalMemoryMiB: Int?
        public var maxSnapshotBytes: Int64?
        /// The size a new guest's disk may have (`diskSizeBytes`, whole MiB), for images with one.
        public var diskSizeMiB: Range
        public init(
            memoryMiB: Range, backendMemoryMiB: [String: Range] = [:], maxGuests: Int?, maxTotalMemoryMiB: Int?,
            maxSnapshotBytes: Int64?,
            diskSizeMiB: Range = .init(min: Int(DiskTemplate.sizes.lowerBound >> 20), max: Int(DiskTemplate.sizes.upperBound >> 20))
        ) {
            self.memoryMiB = memoryMiB
            self.diskSizeMiB = diskSizeMiB
            self.backendMemoryMiB = backendMemoryMiB
            self.maxGuests = maxGuests
            self.maxTotalMemoryMiB = maxTotalMemoryMiB
            self.maxSnapshotBytes = maxSnapshotBytes
        }
    }

    public var description: Description {
        Description(
            memoryMiB: .init(min: GuestLifecycle.memoryRange.lowerBound, max: GuestLifecycle.memoryRange.upperBound),
            backendMemoryMiB: registry.backends.all.reduce(into: [:]) { ranges, entry in
                ranges[entry.key.rawValue] = .init(min: entry.value.memoryRange.lowerBound, max: entry.value.memoryRange.upperBound)
            },
            maxGuests: limits.maxGuests, maxTotalMemoryMiB: limits.maxTotalMemoryMiB, maxSnapshotBytes: limits.maxSnapshotBytes)
    }

    /// Guests that hold resources here: those that moved away do not.
    private func holding() throws -> [GuestRecord] {
        try registry.store.all().filter { $0.state != .migrated }
    }

    /// Refuses one more guest of `memoryMiB`, or more memory for guest `changing`.
    func checkGuest(memoryMiB: Int, changing id: String? = nil) throws {
        let guests = try holding()
        if id == nil, let maximum = limits.maxGuests, guests.count >= maximum {
            throw PanelError(
                .conflict, code: "quota_exceeded",
                message: "this host takes at most \(maximum) guests (limits.maxGuests); delete one first")
        }
        if let maximum = limits.maxTotalMemoryMiB {
            let others = guests.filter { $0.id != id }.reduce(0) { $0 + $1.memoryMiB }
            guard others + memoryMiB <= maximum else {
                throw PanelError(
                    .conflict, code: "quota_exceeded",
                    message:
                        "\(memoryMiB) MiB more would bring guest memory to \(others + memoryMiB) MiB; this host allows \(maximum) MiB (limits.maxTotalMemoryMiB)"
                )
            }
        }
    }

    /// Refuses a snapshot that could take the snapshots past their byte quota: it is at most
    /// the guest's memory plus its devices, so that is what it is held to.
    func checkSnapshot(of guest: GuestRecord) throws {
        guard let maximum = limits.maxSnapshotBytes else { return }
        let used = try snapshotBytes()
        // Its state file holds at most the guest's RAM; the disk tops it freezes become its layers.
        let files = registry.diskFiles(guest.id)
        let needed = (Int64(guest.memoryMiB) << 20) + guest.disks.reduce(0) { $0 + Self.allocatedBytes(files.layout.path($1.overlay)) }
        guard used + needed <= maximum else {
            throw PanelError.insufficientStorage(
                "snapshots use \(used) bytes of the \(maximum) allowed (limits.maxSnapshotBytes); one of guest \(guest.name) may need up to \(needed) more: delete snapshots first"
            )
        }
    }

    /// What snapshots hold on this host: their state files and the disk layers they froze, each
    /// layer once (a qcow2 layer holds only the clusters written while it was a top).
    func snapshotBytes() throws -> Int64 {
        var total = try registry.snapshots.totalBytes()
        var counted = Set<String>()
        for record in try registry.snapshots.allFreezingDisks() {
            let files = registry.diskFiles(record.guestId)
            for disk in record.disks where counted.insert(files.layout.path(disk.overlay)).inserted {
                total += Self.allocatedBytes(files.layout.path(disk.overlay))
            }
        }
        return total
    }

    /// A file's allocated bytes (a sparse file counts what it holds); 0 for none.
    static func allocatedBytes(_ path: String) -> Int64 {
        var info = stat()
        guard stat(path, &info) == 0 else { return 0 }
        return Int64(info.st_blocks) * 512
    }
}
