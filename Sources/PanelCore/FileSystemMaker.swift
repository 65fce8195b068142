import Foundation

/// Debian's mke2fs (e2fsprogs), which makes a new guest disk's file system on the host, as
/// virt-make-fs and cloud images do: the guest's shell has no mkfs of its own.
enum FileSystemMaker {
    static let candidates = ["/usr/sbin/mke2fs", "/sbin/mke2fs"]

    static var mke2fs: String? { candidates.first { FileManager.default.isExecutableFile(atPath: $0) } }

    /// Makes `filesystem` (ext2/3/4) on the raw file `path`, labelled `label`.
    static func make(_ filesystem: String, on path: String, label: String) throws {
        guard ["ext2", "ext3", "ext4"].contains(filesystem) else {
            throw PanelError(.invalid, code: "unsupported_filesystem", message: "cannot make a \(filesystem) file system (ext2, ext3, ext4)")
        }
        guard let tool = mke2fs else {
            throw PanelError(.invalid, code: "image_unavailable", message: "mke2fs is missing: install Debian's e2fsprogs")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["-q", "-F", "-t", filesystem, "-L", label, path]
        process.environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: message, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw PanelError(.invalid, code: "disk_creation_failed", message: "mke2fs failed (status \(process.terminationStatus)): \(text)")
        }
    }
}
