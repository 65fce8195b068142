// A blocking TCP socket for migration streams: the destination listens on an ephemeral
// port for one ticketed connection, the source connects and streams QEVM bytes through
// VMState's ByteSink/ByteSource. Blocking I/O on dedicated threads, like QEMU's
// migration thread; timeouts bound every wait.
import Foundation
import VMState

public struct SocketError: Error, CustomStringConvertible {
    public var description: String
    init(_ operation: String, _ code: Int32 = errno) {
        description = "\(operation): \(String(cString: strerror(code)))"
    }
    init(message: String) { description = message }
}

// @unchecked Sendable: one reading thread at a time (the line buffer); a second may write whole lines, shut down or close, which the kernel handles
public final class TCPSocket: ByteSink, ByteSource, @unchecked Sendable {
    public let fileDescriptor: Int32
    private var lineBuffer: [UInt8] = []

    init(fileDescriptor: Int32) {
        self.fileDescriptor = fileDescriptor
        var one: Int32 = 1
        setsockopt(fileDescriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { Glibc.close(fileDescriptor) }

    /// Connects to an IPv4/IPv6 literal or `localhost`.
    public static func connect(host: String, port: UInt16, timeout: Double) throws -> TCPSocket {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let first = result else {
            throw SocketError(message: "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket") }
        let socket = TCPSocket(fileDescriptor: fd)
        socket.setTimeouts(timeout)
        guard Glibc.connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            throw SocketError("connect to \(host):\(port)")
        }
        return socket
    }

    /// Send and receive timeouts: a peer that stops answering fails the transfer instead of hanging it.
    public func setTimeouts(_ seconds: Double) {
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fileDescriptor, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fileDescriptor, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = send(fileDescriptor, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n < 0 {
                if errno == EINTR { continue }
                throw SocketError("send")
            }
            offset += n
        }
    }

    /// One sendmsg per batch of pieces: RAM pages go from guest memory to the socket uncopied.
    public func write(gathering pieces: [UnsafeRawBufferPointer]) throws {
        let sent = writeFully(gathering: pieces) { vectors, count in
            var message = msghdr()
            message.msg_iov = UnsafeMutablePointer(mutating: vectors)
            message.msg_iovlen = Int(count)
            return sendmsg(fileDescriptor, &message, Int32(MSG_NOSIGNAL))
        }
        if sent < 0 { throw SocketError("send") }
    }

    public func write(line: String) throws {
        try Array((line + "\n").utf8).withUnsafeBytes { try write($0) }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard buffer.count > 0 else { return 0 }
        if !lineBuffer.isEmpty {
            let n = min(buffer.count, lineBuffer.count)
            lineBuffer.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
            lineBuffer.removeFirst(n)
            return n
        }
        while true {
            let n = recv(fileDescriptor, buffer.baseAddress!, buffer.count, 0)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw SocketError("recv")
        }
    }

    /// Whether something can be read before `deadline` (bytes already buffered count; so do the
    /// peer's end and an error, which the read then reports).
    public func waitForInput(until deadline: Date) -> Bool {
        guard lineBuffer.isEmpty else { return true }
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return false }
            var entry = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
            let ready = Glibc.poll(&entry, 1, Int32(min(left, 3600) * 1000) + 1)
            if ready > 0 || (ready < 0 && errno != EINTR) { return true }
        }
    }

    /// Reads one `\n`-terminated line of at most `maximum` bytes; nil at end of stream.
    public func readLine(maximum: Int = 4096) throws -> String? {
        var chunk = [UInt8](repeating: 0, count: 512)
        while true {
            if let newline = lineBuffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: lineBuffer[..<newline], as: UTF8.self)
                lineBuffer.removeFirst(newline + 1)
                return line
            }
            guard lineBuffer.count <= maximum else { throw SocketError(message: "line longer than \(maximum) bytes") }
            let n = chunk.withUnsafeMutableBytes { recv(fileDescriptor, $0.baseAddress!, $0.count, 0) }
            if n == 0 { return nil }
            if n < 0 {
                if errno == EINTR { continue }
                throw SocketError("recv")
            }
            lineBuffer += chunk[..<n]
        }
    }

    /// Reads one `\n`-terminated line a byte at a time, so nothing after it is taken from the
    /// socket: what follows is left for whoever reads next — another process, when the descriptor
    /// is handed on (a QEMU that loads the stream after the panel checked its ticket). Nil at end
    /// of stream.
    public func readLineExactly(maximum: Int = 4096) throws -> String? {
        var line: [UInt8] = lineBuffer
        lineBuffer = []
        var byte: UInt8 = 0
        while true {
            if let newline = line.firstIndex(of: UInt8(ascii: "\n")) {
                lineBuffer = Array(line[(newline + 1)...])
                return String(decoding: line[..<newline], as: UTF8.self)
            }
            guard line.count <= maximum else { throw SocketError(message: "line longer than \(maximum) bytes") }
            let n = recv(fileDescriptor, &byte, 1, 0)
            if n == 0 { return nil }
            if n < 0 {
                if errno == EINTR { continue }
                throw SocketError("recv")
            }
            line.append(byte)
        }
    }

    /// Bytes read ahead of a line and not consumed yet (nothing a second process could see).
    public var hasBufferedInput: Bool { !lineBuffer.isEmpty }

    /// Ends both directions at once; a thread blocked in send/recv on it returns with an error.
    public func shutdown() { Glibc.shutdown(fileDescriptor, Int32(SHUT_RDWR)) }
}

/// A listening socket on an ephemeral port.
// @unchecked Sendable: accept runs on one thread; `close` from another wakes it via shutdown
public final class TCPListener: @unchecked Sendable {
    public let fileDescriptor: Int32
    public let port: UInt16

    public init(host: String) throws {
        var address = sockaddr_storage()
        var length: socklen_t
        let family: Int32
        if host.contains(":") {
            var v6 = sockaddr_in6()
            v6.sin6_family = sa_family_t(AF_INET6)
            guard inet_pton(AF_INET6, host, &v6.sin6_addr) == 1 else { throw SocketError(message: "invalid address \(host)") }
            withUnsafeMutableBytes(of: &address) { $0.storeBytes(of: v6, as: sockaddr_in6.self) }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            family = AF_INET6
        } else {
            var v4 = sockaddr_in()
            v4.sin_family = sa_family_t(AF_INET)
            guard inet_pton(AF_INET, host, &v4.sin_addr) == 1 else { throw SocketError(message: "invalid address \(host)") }
            withUnsafeMutableBytes(of: &address) { $0.storeBytes(of: v4, as: sockaddr_in.self) }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            family = AF_INET
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket") }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 4) == 0 else {
            let error = SocketError("bind/listen on \(host)")
            Glibc.close(fd)
            throw error
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let portBigEndian = withUnsafeBytes(of: address) { raw -> UInt16 in
            family == AF_INET6 ? raw.load(as: sockaddr_in6.self).sin6_port : raw.load(as: sockaddr_in.self).sin_port
        }
        fileDescriptor = fd
        port = UInt16(bigEndian: portBigEndian)
    }

    deinit { Glibc.close(fileDescriptor) }

    /// Waits up to `timeout` seconds for one connection.
    public func accept(timeout: Double) throws -> TCPSocket {
        var poll = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
        let ready = Glibc.poll(&poll, 1, Int32(timeout * 1000))
        guard ready > 0, poll.revents & Int16(POLLIN) != 0 else {
            throw SocketError(message: ready == 0 ? "no connection within \(Int(timeout)) s" : "listener closed")
        }
        let fd = Glibc.accept(fileDescriptor, nil, nil)
        guard fd >= 0 else { throw SocketError("accept") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return TCPSocket(fileDescriptor: fd)
    }

    public func close() { Glibc.shutdown(fileDescriptor, Int32(SHUT_RDWR)) }
}
