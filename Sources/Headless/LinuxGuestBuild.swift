import Foundation

/// Where guests/linux/build.sh keeps the Linux guest it builds (a cache outside the source tree,
/// keyed by its inputs). Only looked up here: `make linux` builds it.
public enum LinuxGuestBuild {
    public static let kernelName = "Image"
    public static let initrdName = "initramfs.cpio"

    /// The directory holding this tree's kernel and initramfs, or nil when they are not built
    /// (or `guestsDir` has no build script).
    public static func builtDirectory(guestsDir: String) -> String? {
        let script = guestsDir + "/linux/build.sh"
        guard FileManager.default.isReadableFile(atPath: script) else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script, "--print-dir"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let path = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0, !path.isEmpty,
            [kernelName, initrdName].allSatisfy({ FileManager.default.isReadableFile(atPath: path + "/" + $0) })
        else { return nil }
        return path
    }
}
