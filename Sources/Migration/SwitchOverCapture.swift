import VMState

/// Where a snapshot's switch-over goes: while held, the bytes written (the last pages, read from
/// guest memory at the writer's flush, and the devices) are copied into memory, so the guest can
/// run on before they reach the disk; `release` then writes them out. Unheld, it passes through.
final class SwitchOverCapture: ByteSink {
    private let inner: ByteSink
    private var held: [UInt8]?

    init(_ inner: ByteSink) {
        self.inner = inner
    }

    /// From now on, keep the bytes (about `expected` of them) instead of writing them.
    func hold(expected: Int) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(expected)
        held = bytes
    }

    /// Writes what was held and passes through again.
    func release() throws {
        guard let bytes = held else { return }
        held = nil
        try bytes.withUnsafeBytes { try inner.write($0) }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if held != nil { held!.append(contentsOf: bytes) } else { try inner.write(bytes) }
    }

    func write(gathering pieces: [UnsafeRawBufferPointer]) throws {
        guard held != nil else { return try inner.write(gathering: pieces) }
        for piece in pieces { held!.append(contentsOf: piece) }
    }
}
