// A release's frozen `-dump-vmstate` output (SPEC §2): Tests/Fixtures/releases/
// <release>/<machine>.vmstate.json, one per versioned type, written once when the
// release is cut and never regenerated. Later releases are checked against them.
import Foundation

public struct FrozenRelease: Sendable, Equatable {
    public static let dumpSuffix = ".vmstate.json"

    public let release: String
    /// Canonical machine type → the dump's text, as frozen. A file that cannot be read
    /// keeps its name with an empty text, so the matrix reports it instead of hiding it.
    public let dumps: [String: String]

    public init(release: String, dumps: [String: String]) {
        self.release = release
        self.dumps = dumps
    }

    /// Every release directory under `directory`, oldest first. A missing directory means
    /// no release was frozen yet.
    public static func loadAll(from directory: String) -> [FrozenRelease] {
        let files = FileManager.default
        guard let names = try? files.contentsOfDirectory(atPath: directory) else { return [] }
        let releases = names.compactMap { name -> FrozenRelease? in
            let path = directory + "/" + name
            var isDirectory: ObjCBool = false
            guard !name.hasPrefix("."), files.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue,
                let entries = try? files.contentsOfDirectory(atPath: path)
            else { return nil }
            var dumps: [String: String] = [:]
            for entry in entries where entry.hasSuffix(dumpSuffix) && entry.count > dumpSuffix.count {
                dumps[String(entry.dropLast(dumpSuffix.count))] =
                    (try? String(contentsOfFile: path + "/" + entry, encoding: .utf8)) ?? ""
            }
            return FrozenRelease(release: name, dumps: dumps)
        }
        return releases.sorted { releaseOrder($0.release, $1.release) }
    }

    /// "1.10" after "1.9": numeric components compare as numbers, the rest as text.
    public static func releaseOrder(_ a: String, _ b: String) -> Bool {
        let x = a.split(separator: ".")
        let y = b.split(separator: ".")
        for (p, q) in zip(x, y) where p != q {
            if let m = Int(p), let n = Int(q) { return m < n }
            return p < q
        }
        return x.count < y.count
    }
}
