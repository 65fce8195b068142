// A QEMU release as QMP reports it (the greeting and `query-version`): major.minor.micro
// plus the distribution's package string. Migration promises compare releases, and a
// Debian stable update (7.2.x) keeps the release's machine types and wire format.
import Foundation

public struct QEMUVersion: Sendable, Codable, Hashable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var micro: Int
    /// e.g. "Debian 1:7.2+dfsg-7+deb12u18+b3"; empty for an upstream build.
    public var package: String

    public init(major: Int, minor: Int, micro: Int, package: String = "") {
        self.major = major
        self.minor = minor
        self.micro = micro
        self.package = package
    }

    /// From `{"qemu": {"major", "minor", "micro"}, "package"}`.
    init?(qmp value: QMPValue) {
        guard let qemu = value["qemu"], let major = qemu["major"]?.intValue, let minor = qemu["minor"]?.intValue,
            let micro = qemu["micro"]?.intValue
        else { return nil }
        self.init(
            major: Int(major), minor: Int(minor), micro: Int(micro),
            package: value["package"]?.stringValue?.trimmingCharacters(in: .whitespaces) ?? "")
    }

    /// "7.2" — what versioned machine types are named after, and what QEMU's
    /// compatibility promises are about (a micro release changes neither).
    public var release: String { "\(major).\(minor)" }

    public var description: String { "\(major).\(minor).\(micro)" }

    public static func < (a: Self, b: Self) -> Bool { (a.major, a.minor, a.micro) < (b.major, b.minor, b.micro) }
    public static func == (a: Self, b: Self) -> Bool { (a.major, a.minor, a.micro) == (b.major, b.minor, b.micro) }
    public func hash(into hasher: inout Hasher) { hasher.combine(major); hasher.combine(minor); hasher.combine(micro) }
}
