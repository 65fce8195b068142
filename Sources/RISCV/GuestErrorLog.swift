// "A bad guest access is logged and ignored, never fatal" (QEMU's
// LOG_GUEST_ERROR). Counted always; printed to stderr only when
// EMUPANEL_GUEST_ERRORS is set, and at most 100 times per process.
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

public enum GuestErrorLog {
    static let count = Atomic<Int>(0)
    static let enabled: Bool = getenv("EMUPANEL_GUEST_ERRORS") != nil

    public static var total: Int { count.load(ordering: .relaxed) }

    static func log(_ message: @autoclosure () -> String) {
        let n = count.add(1, ordering: .relaxed).newValue
        if enabled && n <= 100 {
            let line = "guest error: \(message())\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
        }
    }
}
