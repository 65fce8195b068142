import Crypto
import Foundation
import Synchronization

/// A machine type's state descriptions as a migration offer carries them: the dump without its
/// indentation, and that text's SHA-256. An offer sends the digest alone first; only a
/// destination whose own descriptions differ asks for the text, to run the static checker on it
/// (QEMU's riscv64 dump is 600 KB: sending and comparing it was most of a migration's set-up).
struct StateDescriptions: Sendable {
    let compact: String
    let sha256: String

    init(dump: String) {
        compact = JSON.withoutWhitespace(dump)
        sha256 = SHA256.hash(data: Data(compact.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// What a destination answers to a digest that is not its own, when the offer came without
    /// the text: the source sends the offer again with it.
    static let needed = PanelError(
        .conflict, code: "vmstate_needed",
        message: "the offered machine's state descriptions differ from this host's; send them whole (vmstate) for the static check")

    /// Whether a destination's refusal asks for the text: `needed`, or a release before digests,
    /// which requires the `vmstate` field.
    static func isRequest(_ error: PeerError) -> Bool {
        error.code == needed.code || (error.code == "invalid_json" && error.message.contains("'vmstate'"))
    }
}

/// Descriptions computed once per key (a machine type, or a QEMU binary's build and type): they
/// never change while the key holds.
final class StateDescriptionsCache: Sendable {
    private let entries = Mutex<[String: StateDescriptions]>([:])

    func descriptions(_ key: String, dump: () throws -> String) rethrows -> StateDescriptions {
        if let known = entries.withLock({ $0[key] }) { return known }
        let made = StateDescriptions(dump: try dump())
        entries.withLock { $0[key] = made }
        return made
    }
}
