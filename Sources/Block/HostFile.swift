// A host file behind an image: whole-buffer pread/pwrite (looping over short transfers and
// EINTR), fsync and size, with errors that name the file.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

final class HostFile {
    let path: String
    let fd: Int32
    let writable: Bool

    init(path: String, writable: Bool) throws {
        self.path = path
        self.writable = writable
        let fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC)
        guard fd >= 0 else { throw BlockError.cannotOpen(path: path, errno: errno) }
        self.fd = fd
    }

    /// A new file that must not exist yet.
    init(creating path: String) throws {
        self.path = path
        writable = true
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw errno == EEXIST ? BlockError.exists(path: path) : BlockError.cannotOpen(path: path, errno: errno)
        }
        self.fd = fd
    }

    deinit { close(fd) }

    var size: UInt64 {
        get throws {
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw BlockError.io(path: path, operation: "stat", errno: errno) }
            return UInt64(st.st_size)
        }
    }

    /// Reads exactly `buffer.count` bytes; bytes past the end of the file read as zero.
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw BlockError.io(path: path, operation: "read", errno: errno)
            }
            if n == 0 {
                (buffer.baseAddress! + done).initializeMemory(as: UInt8.self, repeating: 0, count: buffer.count - done)
                return
            }
            done += n
        }
    }

    func write(at offset: UInt64, from buffer: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < buffer.count {
            let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw BlockError.io(path: path, operation: "write", errno: errno)
            }
            done += n
        }
    }

    func read(at offset: UInt64, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try read(at: offset, into: $0) }
        return bytes
    }

    func write(at offset: UInt64, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write(at: offset, from: $0) }
    }

    func sync() throws {
        guard fsync(fd) == 0 else { throw BlockError.io(path: path, operation: "fsync", errno: errno) }
    }
}
