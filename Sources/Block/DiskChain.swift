// Chains of qcow2 overlays, the way libvirt's external snapshots use them: the guest
// writes only to the top image; a snapshot freezes that image and starts a new overlay
// on it; a restore starts a fresh overlay on the snapshot's frozen image; a migration
// sends the frozen images the destination lacks, then the top. Frozen images are never
// written again, so they can be copied while the guest runs.

public enum DiskChain {
    /// The files of `top`'s chain, top first, base last.
    public static func files(of top: String) throws -> [String] {
        try QCOW2Image(path: top, writable: false).chain
    }

    /// Creates `overlay`, an empty qcow2 image backed by `base` (named relative to the
    /// overlay's directory when both share it, as libvirt and qemu-img do), with the base's
    /// size. Freezing the guest's current image and continuing in a new one is this call
    /// followed by `VirtMachine.replaceDisk` while the guest is parked; restoring a snapshot
    /// is this call on the snapshot's frozen image and a fresh machine.
    public static func startOverlay(_ overlay: String, over base: String) throws {
        let name = QCOW2Image.directoryOf(base) == QCOW2Image.directoryOf(overlay) ? QCOW2Image.baseName(base) : base
        try QCOW2Image.create(path: overlay, backingFile: name)
    }
}
