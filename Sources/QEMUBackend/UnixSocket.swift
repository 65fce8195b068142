// Unix sockets between the panel and its QEMU processes. The monitor and console
// sockets are bound and listened on here, handed to QEMU as descriptors
// (`-chardev socket,fd=N,server=on`), and connected to before QEMU even starts: the
// connection waits in the backlog until QEMU accepts it, so there is no window in
// which the panel polls for a socket file to appear (libvirt passes its monitor
// socket the same way). Data descriptors for snapshots are socket pairs, because a
// socket write can refuse SIGPIPE (MSG_NOSIGNAL) where a pipe write cannot.
import CProcessIO
import Foundation

enum UnixSocket {
    /// sun_path's size on Linux, terminator included.
    private static let maximumPathBytes = 108

    /// A listening socket bound at `path` (a stale socket file there is replaced).
    static func listen(at path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw QEMUError.io(operation: "socket", errno: errno) }
        do {
            Glibc.unlink(path)
            try withAddress(path) { address, length in
                guard bind(fd, address, length) == 0 else { throw QEMUError.io(operation: "bind \(path)", errno: errno) }
            }
            guard Glibc.listen(fd, 4) == 0 else { throw QEMUError.io(operation: "listen \(path)", errno: errno) }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// The socket file at `path` (device and inode), to recognise it later.
    static func identity(ofSocketAt path: String) -> (dev_t, ino_t)? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return (info.st_dev, info.st_ino)
    }

    /// Removes the socket file at `path` only if it is still the one identified, so a QEMU
    /// that ended late never removes the socket of the QEMU that replaced it.
    static func unlink(_ path: String, ifStill identity: (dev_t, ino_t)?) {
        guard let identity, let now = self.identity(ofSocketAt: path), now == identity else { return }
        Glibc.unlink(path)
    }

    /// A socket connected to `path`; against our own listening socket this completes at once.
    static func connect(to path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw QEMUError.io(operation: "socket", errno: errno) }
        do {
            try withAddress(path) { address, length in
                guard Glibc.connect(fd, address, length) == 0 else {
                    throw QEMUError.io(operation: "connect \(path)", errno: errno)
                }
            }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// Two connected stream sockets, both close-on-exec (a descriptor reaches QEMU only by
    /// being passed on purpose). Buffers of `bufferBytes` keep a snapshot's copy loop fed.
    static func pair(bufferBytes: Int32 = 4 << 20) throws -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw QEMUError.io(operation: "socketpair", errno: errno)
        }
        var size = bufferBytes
        for fd in fds {
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        return (fds[0], fds[1])
    }

    /// Writes everything, never raising SIGPIPE; a closed peer is an error.
    static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n < 0 {
                if errno == EINTR { continue }
                throw QEMUError.io(operation: "send", errno: errno)
            }
            offset += n
        }
    }

    /// Reads what is there (blocking until something is); 0 at the peer's end.
    static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = recv(fd, buffer.baseAddress!, buffer.count, 0)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw QEMUError.io(operation: "recv", errno: errno)
        }
    }

    /// Waits up to `milliseconds` for `fd` to be readable (or closed); false on timeout.
    static func waitReadable(_ fd: Int32, milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let n = poll(&entry, 1, milliseconds)
            if n < 0 && errno == EINTR { continue }
            return n > 0
        }
    }

    /// Calls `body` with a sockaddr_un for `path`. A path longer than sun_path (deep data
    /// directories) is reached through /proc/self/fd/<directory descriptor>/<name>.
    private static func withAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Void) throws {
        var directoryFD: Int32 = -1
        defer { if directoryFD >= 0 { close(directoryFD) } }
        var usable = path
        if path.utf8.count >= maximumPathBytes {
            let url = URL(fileURLWithPath: path)
            directoryFD = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard directoryFD >= 0 else { throw QEMUError.io(operation: "open the directory of \(path)", errno: errno) }
            usable = "/proc/self/fd/\(directoryFD)/\(url.lastPathComponent)"
            guard usable.utf8.count < maximumPathBytes else {
                throw QEMUError.invalidConfiguration("socket name \(url.lastPathComponent) is too long")
            }
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(usable.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        try withUnsafePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, length) }
        }
    }
}
