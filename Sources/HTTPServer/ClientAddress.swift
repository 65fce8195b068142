import Foundation

/// The address a connection comes from, kept as bytes: read for every request, formatted only
/// when logged.
public struct ClientAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Family: Sendable, Hashable { case ipv4, ipv6, unknown }

    public let family: Family
    /// Network byte order; an IPv4 address is in the high 4 bytes of `high`.
    private let high: UInt64
    private let low: UInt64

    public static let unknown = ClientAddress(family: .unknown, high: 0, low: 0)

    private init(family: Family, high: UInt64, low: UInt64) {
        self.family = family
        self.high = high
        self.low = low
    }

    /// From a socket address; an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) counts as IPv4.
    public init(_ address: UnsafePointer<sockaddr>?) {
        guard let address else { self = .unknown; return }
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            let v4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
            self.init(family: .ipv4, high: UInt64(UInt32(bigEndian: v4)) << 32, low: 0)
        case AF_INET6:
            let (high, low) = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                withUnsafeBytes(of: pointer.pointee.sin6_addr) { bytes in
                    (
                        UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                        UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                    )
                }
            }
            if high == 0, low >> 32 == 0xFFFF {
                self.init(family: .ipv4, high: (low & 0xFFFF_FFFF) << 32, low: 0)
            } else {
                self.init(family: .ipv6, high: high, low: low)
            }
        default:
            self = .unknown
        }
    }

    /// The unit that counts as one client for limits: an IPv4 address, or the /64 an IPv6 address
    /// is in (a single host usually holds a whole /64 and may use any address in it).
    public var network: ClientAddress {
        family == .ipv6 ? ClientAddress(family: .ipv6, high: high, low: 0) : self
    }

    public var description: String {
        switch family {
        case .unknown:
            return "unknown"
        case .ipv4:
            var address = in_addr(s_addr: UInt32(high >> 32).bigEndian)
            var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            inet_ntop(AF_INET, &address, &buffer, socklen_t(buffer.count))
            return String(cString: buffer)
        case .ipv6:
            var bytes = (high.bigEndian, low.bigEndian)
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            withUnsafeBytes(of: &bytes) { _ = inet_ntop(AF_INET6, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
            return String(cString: buffer)
        }
    }
}
