import Foundation
import Synchronization

/// Which `Host` values name this server (RFC 9110 §7.2). A page on an attacker's domain can have
/// its name re-resolved to 127.0.0.1 (DNS rebinding) and then talk to the panel as a same-origin
/// page; its requests still carry the attacker's name in `Host`, so they are answered 421.
///
/// Served: the listen address; when listening on loopback, `localhost` and any loopback address;
/// when listening on every address, `localhost`, loopback and this machine's interface addresses;
/// always the machine's host name and the configured `hostNames`. Ports are not compared (a
/// forwarded port is still this server). IP literals cannot be rebound, but one that is not this
/// server's is still misdirected.
struct HostPolicy: Sendable {
    enum Verdict: Equatable {
        case allowed
        /// HTTP/1.1 without `Host`, or an empty one (RFC 9112 §3.2: 400).
        case missing
        case misdirected
    }

    private enum Listen: Sendable {
        case address(IPAddress)
        case everywhere
    }

    private let listen: Listen
    private let interfaces = InterfaceAddresses()
    private let names: Set<String>
    /// The spellings seen on almost every request, compared as bytes before anything is parsed.
    private let quickNames: [[UInt8]]

    init(listenHost: String, names configured: [String], machineName: String? = Self.machineName) {
        let address = IPAddress(listenHost)
        listen = address.map { $0.isUnspecified ? .everywhere : .address($0) } ?? .everywhere
        var names = Set(configured.compactMap(Self.normalized))
        if let machineName, let name = Self.normalized(machineName), IPAddress(name) == nil { names.insert(name) }
        let local: Bool
        switch listen {
        case .address(let address): local = address.isLoopback
        case .everywhere: local = true
        }
        if local { names.insert("localhost") }
        self.names = names
        var quick = names.map { Array($0.utf8) }
        if case .address(let address) = listen { quick.append(Array(address.hostText.utf8)) }
        if local { quick.append(Array("127.0.0.1".utf8)) }
        quickNames = quick
    }

    /// gethostname(2): the name this machine calls itself, without asking DNS.
    static var machineName: String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return nil }
        return String(cString: buffer)
    }

    /// `Host` as sent (nil: absent). `http10`: a request that may omit it.
    func check(_ host: UnsafePointer<CChar>?, http10: Bool) -> Verdict {
        guard let host else { return http10 ? .allowed : .missing }
        let length = strlen(host)
        if length == 0 { return .missing }
        return host.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
            let text = UnsafeBufferPointer(start: bytes, count: length)
            let name = Self.withoutPort(text)
            for quick in quickNames where quick.count == name.count && memcmp(quick, name.baseAddress!, name.count) == 0 {
                return .allowed
            }
            return allows(String(decoding: name, as: UTF8.self)) ? .allowed : .misdirected
        }
    }

    /// The name part of `name:port` / `[v6]:port`; the whole value when the port is not digits.
    private static func withoutPort(_ text: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        var end = text.count
        while end > 0, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(text[end - 1]) { end -= 1 }
        guard end > 0, end < text.count, text[end - 1] == UInt8(ascii: ":") else { return text }
        let name = UnsafeBufferPointer(rebasing: text[..<(end - 1)])
        // A bare IPv6 address also ends in `:digits`; only a bracketed one may carry a port.
        if name.contains(UInt8(ascii: ":")) && name.last != UInt8(ascii: "]") { return text }
        return name
    }

    private func allows(_ name: String) -> Bool {
        if name.hasPrefix("[") {
            guard name.hasSuffix("]"), let address = IPAddress(String(name.dropFirst().dropLast())), address.isIPv6 else { return false }
            return allows(address)
        }
        if let address = IPAddress(name), !address.isIPv6 { return allows(address) }
        guard let normalized = Self.normalized(name) else { return false }
        return names.contains(normalized)
    }

    private func allows(_ address: IPAddress) -> Bool {
        switch listen {
        case .address(let listening):
            return address == listening || (listening.isLoopback && address.isLoopback)
        case .everywhere:
            return address.isLoopback || interfaces.contains(address)
        }
    }

    /// A DNS name as compared: lowercased, without the root's trailing dot; nil when it is not one
    /// (letters, digits, `-` and `.`, labels of 1–63 bytes, 253 in all) and not an IP literal.
    static func normalized(_ name: String) -> String? {
        var name = name.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        if IPAddress(name) != nil { return name }
        guard !name.isEmpty, name.utf8.count <= 253 else { return nil }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard (1...63).contains(label.utf8.count),
                label.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D })
            else { return nil }
        }
        return name
    }
}

/// This machine's interface addresses, read again at most every few seconds: interfaces come
/// and go, and a server on every address reached by its LAN address asks on every request.
private final class InterfaceAddresses: Sendable {
    private struct Snapshot {
        var addresses: Set<IPAddress> = []
        var taken: ContinuousClock.Instant?
    }

    private let snapshot = Mutex(Snapshot())

    func contains(_ address: IPAddress) -> Bool {
        let now = ContinuousClock.now
        return snapshot.withLock { snapshot in
            if snapshot.taken.map({ now - $0 > .seconds(5) }) ?? true {
                snapshot.addresses = IPAddress.interfaceAddresses()
                snapshot.taken = now
            }
            return snapshot.addresses.contains(address)
        }
    }
}

/// An IPv4 or IPv6 address as bytes, for comparing addresses however they were spelled.
struct IPAddress: Hashable, Sendable {
    /// IPv4 addresses use the first 4 bytes.
    private var bytes: [UInt8]
    let isIPv6: Bool

    init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: v4) { Array($0) }
            isIPv6 = false
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: v6) { Array($0) }
            isIPv6 = true
        } else {
            return nil
        }
    }

    private init(bytes: [UInt8], isIPv6: Bool) {
        self.bytes = bytes
        self.isIPv6 = isIPv6
    }

    var isLoopback: Bool {
        isIPv6 ? bytes == [UInt8](repeating: 0, count: 15) + [1] : bytes[0] == 127
    }

    var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }

    /// The conventional spelling, as a client types it into `Host`.
    var hostText: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        bytes.withUnsafeBytes { _ = inet_ntop(isIPv6 ? AF_INET6 : AF_INET, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        let text = String(cString: buffer)
        return isIPv6 ? "[\(text)]" : text
    }

    /// This machine's interface addresses (getifaddrs).
    static func interfaceAddresses() -> Set<IPAddress> {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var addresses = Set<IPAddress>()
        for entry in sequence(first: first, next: { $0.pointee.ifa_next }) {
            guard let address = entry.pointee.ifa_addr else { continue }
            switch Int32(address.pointee.sa_family) {
            case AF_INET:
                address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    addresses.insert(IPAddress(bytes: withUnsafeBytes(of: $0.pointee.sin_addr) { Array($0) }, isIPv6: false))
                }
            case AF_INET6:
                address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    addresses.insert(IPAddress(bytes: withUnsafeBytes(of: $0.pointee.sin6_addr) { Array($0) }, isIPv6: true))
                }
            default:
                break
            }
        }
        return addresses
    }
}
