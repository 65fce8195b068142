import EmulatorCore
import Foundation
import RISCV

extension VirtMachine {
    /// Replaces RAM and device state with a snapshot file's. Every device section is checked
    /// (from the file's tail) before any RAM is touched; with `expectedChecksum` the file is hashed
    /// while it loads and a mismatch throws (the machine must then be discarded).
    public func load(snapshotFile path: String, as type: MachineType, expectedChecksum: String? = nil) throws {
        let state = try machineState(for: type)
        try state.preflight(snapshotTail: try SnapshotFile.tail(of: path, count: 16 << 20))
        try SnapshotFile.read(path, expectedChecksum: expectedChecksum) { source in
            try loadState(from: source, as: type)
        }
    }
}

extension LiveMachine {
    /// Before start: replaces RAM and device state from a snapshot file, checked against this
    /// machine and (with `expectedChecksum`) its checksum.
    public func load(fromFile path: String, expectedChecksum: String? = nil) throws {
        try withMachineBeforeStart { try $0.load(snapshotFile: path, as: machineType, expectedChecksum: expectedChecksum) }
    }
}
