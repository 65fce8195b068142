import HTTPServer
import PanelCore
import Synchronization

/// Holds back changes (anything but GET/HEAD) until the panel has recovered from its last run:
/// temporary files of interrupted writes removed, saved guests resumed. The server binds first,
/// so a taken port fails the start before any saved guest is touched; for the few milliseconds
/// recovery takes, a change answers 503 with Retry-After instead of racing it.
final class StartupGate: Middleware {
    private let open = Atomic<Bool>(false)

    func openUp() { open.store(true, ordering: .releasing) }

    func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response {
        guard open.load(ordering: .acquiring) || request.method == .GET || request.method == .HEAD else {
            throw HTTPError(
                .serviceUnavailable, code: "starting", message: "the panel is resuming its guests; retry in a moment",
                headers: [("Retry-After", "1")])
        }
        return try next(request)
    }
}
