// The guest's serial line: QEMU's `-serial chardev:` on a socket. A thread reads what
// the guest writes and hands it on; input is written to the socket as QEMU's UART can
// take it (a guest that stops reading makes the write time out, not hang the caller).
import Foundation
import Synchronization

final class QEMUConsole: Sendable {
    private let fd: Int32
    private let readerDone = DispatchSemaphore(value: 0)
    private let closed = Atomic<Bool>(false)
    private let writing = Mutex(())

    /// Takes ownership of `socket` (connected to QEMU's console chardev).
    init(socket: Int32, output: @escaping @Sendable ([UInt8]) -> Void) {
        fd = socket
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let thread = Thread { [fd, readerDone] in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 << 10, alignment: 8)
            defer { buffer.deallocate() }
            while let n = try? UnixSocket.receive(fd, into: buffer), n > 0 {
                output(Array(UnsafeRawBufferPointer(rebasing: buffer[..<n])))
            }
            readerDone.signal()
        }
        thread.name = "emupanel-qemu-console"
        thread.start()
    }

    deinit { close() }

    /// Sends `bytes` to the guest's UART.
    func send(_ bytes: [UInt8]) throws {
        guard !closed.load(ordering: .acquiring) else { throw QEMUError.io(operation: "console input", errno: EPIPE) }
        try writing.withLock { _ in try bytes.withUnsafeBytes { try UnixSocket.send(fd, $0) } }
    }

    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        shutdown(fd, Int32(SHUT_RDWR))
        readerDone.wait()
        Glibc.close(fd)
    }
}
