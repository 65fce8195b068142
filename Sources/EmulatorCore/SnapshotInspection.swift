// `emupanel snapshot inspect FILE`: the filesystem access around VMState's
// machine-independent inspector, shared by the command line and (later) the
// snapshots API.
import Foundation
import VMState

public enum SnapshotInspection {
    /// Reads the file's tail for the VMDESCRIPTION (as analyze-migration.py does), then
    /// walks the file once from the start; guest RAM is never held in memory.
    public static func inspect(path: String) throws -> QEVMInspection {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw InputError("\(path): cannot open: \(String(cString: strerror(errno)))")
        }
        defer { try? handle.close() }
        do {
            let size = try handle.seekToEnd()
            let window = min(size, UInt64(QEVMInspector.vmDescriptionSearchWindow))
            try handle.seek(toOffset: size - window)
            let tail = Array(try handle.read(upToCount: Int(window)) ?? Data())
            let description = QEVMInspector.locateVMDescription(tail: tail, totalBytes: size)
            try handle.seek(toOffset: 0)
            return try QEVMInspector.inspect(
                source: FileDescriptorSource(fileDescriptor: handle.fileDescriptor),
                totalBytes: size, vmDescription: description)
        } catch let error as VMStateError {
            throw InputError("\(path): not a valid QEVM stream: \(error)")
        } catch let error as QEVMInspectionError {
            throw InputError("\(path): not a valid QEVM stream: \(error)")
        } catch {
            throw InputError("\(path): \(error.localizedDescription)")
        }
    }
}
