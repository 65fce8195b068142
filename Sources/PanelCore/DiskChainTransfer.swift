import Block
import Foundation
import Migration
import Synchronization
import VMState

/// A guest's disk chains on a migration's socket, around its QEVM stream (docs/DECISIONS.md,
/// "Disks on a live migration"). The destination is a new guest and has none of the files, so
/// each disk's whole chain goes: the layers frozen when the migration starts, base first, while
/// the guest runs (they are never written again); then, after the stream, the small layer frozen
/// at the switch-over. On the wire, lines and bytes:
///
///     DISK <id> <size-bytes>
///     FILE <name> <length>\n<length bytes>      (base first; the last one is the layer to go on)
///     END
///
/// The destination checks every name against the disk layout and every file's backing name
/// against the file before it, so a chain it accepts is whole and stays inside its directory.
enum DiskChainTransfer {
    /// The most one migration may bring: every file of every chain.
    static let maximumBytes: UInt64 = 256 << 30

    /// `layer`'s chain within the directory, base first.
    static func chain(from layer: String, in files: GuestDiskFiles) throws -> [String] {
        var names = [layer]
        while let below = try QCOW2Image.header(of: files.layout.path(names.last!)).backingFile {
            guard !below.contains("/"), names.count < QCOW2Image.maximumChainLength else {
                throw PanelError(.invalid, code: "disk_chain_invalid", message: "\(names.last!) names a backing file outside its directory")
            }
            names.append(below)
        }
        return names.reversed()
    }

    /// The bytes `send` would write for these chains.
    static func size(of chains: [(disk: GuestDisk, files: [String])], in files: GuestDiskFiles) throws -> UInt64 {
        try chains.flatMap(\.files).reduce(0) { total, name in
            total + UInt64(try FileManager.default.attributesOfItem(atPath: files.layout.path(name))[.size] as? Int ?? 0)
        }
    }

    static func send(
        _ chains: [(disk: GuestDisk, files: [String])], from files: GuestDiskFiles, to sink: ByteSink,
        sent: (UInt64) -> Void
    ) throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for chain in chains {
            try writeLine("DISK \(chain.disk.id) \(chain.disk.sizeBytes)", to: sink)
            for name in chain.files {
                let path = files.layout.path(name)
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw PanelError(.invalid, code: "disk_unreadable", message: "cannot read \(name) (errno \(errno))") }
                defer { close(fd) }
                var st = stat()
                guard fstat(fd, &st) == 0 else { throw PanelError(.invalid, code: "disk_unreadable", message: "cannot stat \(name)") }
                let length = UInt64(st.st_size)
                try writeLine("FILE \(name) \(length)", to: sink)
                var done: UInt64 = 0
                while done < length {
                    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, Int(min(UInt64($0.count), length - done))) }
                    guard n > 0 else { throw PanelError(.invalid, code: "disk_unreadable", message: "\(name) ended early or failed to read") }
                    try buffer.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    done += UInt64(n)
                    sent(UInt64(n))
                }
            }
        }
        try writeLine("END", to: sink)
    }

    private static func writeLine(_ line: String, to sink: ByteSink) throws {
        try Array((line + "\n").utf8).withUnsafeBytes { try sink.write($0) }
    }

    /// Reads chains until END into the directory; returns each disk's last layer. `below` names
    /// the layer each disk's first file must be backed by (the second part, after the stream).
    static func receive(
        from socket: TCPSocket, into files: GuestDiskFiles, expected: [GuestDisk],
        below: [String: String] = [:]
    ) throws -> [String: String] {
        try FileManager.default.createDirectory(
            atPath: files.layout.directory, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        var layers: [String: String] = [:]
        var disk: (id: String, previous: String?)?
        var total: UInt64 = 0
        func refuse(_ why: String) -> PanelError { PanelError(.invalid, code: "disk_chain_invalid", message: why) }
        while true {
            guard let line = try socket.readLine(maximum: 512) else { throw refuse("the stream ended inside the disks") }
            let words = line.split(separator: " ").map(String.init)
            switch words.first {
            case "END":
                guard Set(layers.keys) == Set(expected.map(\.id)) else { throw refuse("the disks sent are not the disks offered") }
                return layers
            case "DISK":
                guard words.count == 3, let size = Int64(words[2]), let offered = expected.first(where: { $0.id == words[1] }),
                    offered.sizeBytes == size, layers[offered.id] == nil
                else { throw refuse("unexpected disk: \(line)") }
                disk = (offered.id, below[offered.id])
            case "FILE":
                guard words.count == 3, let current = disk, let length = UInt64(words[2]) else { throw refuse("unexpected line: \(line)") }
                let name = words[1]
                guard name == files.layout.baseName(current.id) || files.layout.isOverlay(name, of: current.id),
                    !FileManager.default.fileExists(atPath: files.layout.path(name))
                else { throw refuse("unexpected file name \(name)") }
                total += length
                guard total <= maximumBytes else { throw refuse("more than \(maximumBytes) bytes of disks") }
                try receiveFile(name, length: length, from: socket, into: files)
                let backing = try QCOW2Image.header(of: files.layout.path(name)).backingFile
                guard backing == current.previous else {
                    throw refuse("\(name) is backed by \(backing ?? "nothing"), not by the file sent before it")
                }
                disk = (current.id, name)
                layers[current.id] = name
            default:
                throw refuse("unexpected line: \(line.prefix(80))")
            }
        }
    }

    private static func receiveFile(_ name: String, length: UInt64, from socket: TCPSocket, into files: GuestDiskFiles) throws {
        let path = files.layout.path(name)
        let temporary = files.layout.path(".\(name).partial")
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw PanelError(.invalid, code: "disk_creation_failed", message: "cannot write \(name) (errno \(errno))") }
        var closed = false
        defer { if !closed { close(fd) }; unlink(temporary) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var done: UInt64 = 0
        while done < length {
            let n = try buffer.withUnsafeMutableBytes {
                try socket.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<Int(min(UInt64($0.count), length - done))]))
            }
            guard n > 0 else { throw PanelError(.invalid, code: "disk_chain_invalid", message: "the stream ended inside \(name)") }
            var written = 0
            while written < n {
                let w = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + written, n - written) }
                guard w > 0 else {
                    throw errno == ENOSPC
                        ? PanelError.insufficientStorage("the disk holding the guests is full")
                        : PanelError(.invalid, code: "disk_creation_failed", message: "cannot write \(name) (errno \(errno))")
                }
                written += w
            }
            done += UInt64(n)
        }
        guard fsync(fd) == 0 else { throw PanelError(.invalid, code: "disk_creation_failed", message: "cannot sync \(name)") }
        close(fd)
        closed = true
        guard link(temporary, path) == 0 else { throw PanelError(.invalid, code: "disk_creation_failed", message: "cannot place \(name)") }
    }
}

/// Disk bytes a migration has sent of its total, for the task's figures (QEMU's query-migrate
/// `disk` object of block migration: transferred, remaining, total).
final class DiskTransferCount: Sendable {
    private let counts = Mutex<(transferred: UInt64, total: UInt64)>((0, 0))

    func add(total: UInt64) { counts.withLock { $0.total += total } }
    func add(sent: UInt64) { counts.withLock { $0.transferred += sent } }

    var json: JSON {
        let (transferred, total) = counts.withLock { $0 }
        return [
            "transferred": .number(Double(transferred)), "remaining": .number(Double(total - min(total, transferred))),
            "total": .number(Double(total)),
        ]
    }
}
