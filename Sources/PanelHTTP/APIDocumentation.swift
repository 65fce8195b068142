import HTTPServer
import PanelCore

// What the OpenAPI document learns its schemas from: the API's own Codable types, with the core's
// example values (PanelCore/APIExamples.swift) for those it answers with.

extension GuestRecord: APIExample { public static var example: GuestRecord { APIExamples.guest } }
extension TaskInfo: APIExample { public static var example: TaskInfo { APIExamples.task } }
extension SnapshotView: APIExample { public static var example: SnapshotView { APIExamples.snapshot } }
extension ImageCatalog.Image: APIExample { public static var example: ImageCatalog.Image { APIExamples.image } }
extension ConsoleBuffer.ConsoleChunk: APIExample { public static var example: ConsoleBuffer.ConsoleChunk { APIExamples.consoleChunk } }
extension EventBus.EventsPage: APIExample { public static var example: EventBus.EventsPage { APIExamples.eventsPage } }
extension MachineTypeSummary: APIExample { public static var example: MachineTypeSummary { APIExamples.machineTypeSummary } }
extension MachineTypeDetail: APIExample { public static var example: MachineTypeDetail { APIExamples.machineTypeDetail } }
extension CompatibilityDocument: APIExample { public static var example: CompatibilityDocument { APIExamples.compatibility } }
extension IncomingMigrations.Verdict: APIExample { public static var example: IncomingMigrations.Verdict { APIExamples.verdict } }
extension IncomingMigrations.Ticket: APIExample { public static var example: IncomingMigrations.Ticket { APIExamples.ticket } }
extension HostCounts: APIExample { public static var example: HostCounts { APIExamples.counts } }
extension HandOverStatus: APIExample {
    public static var example: HandOverStatus { HandOverStatus(migrationId: "0123456789abcdef", guestId: "g-5e6f7a8b", state: .running) }
}
extension HandOvers.Side: SchemaEnumerable, CaseIterable {
    public static var allCases: [HandOvers.Side] { [.here, .peer] }
}

extension Items: APIExample where T: APIExample {
    public static var example: Items<T> { Items(items: [T.example]) }
}

extension GuestState: SchemaEnumerable {}
extension Backend: SchemaEnumerable {}
extension QEMUHost.Status: SchemaEnumerable, CaseIterable {
    public static var allCases: [QEMUHost.Status] { [.disabled, .discovering, .ready] }
}
extension TaskInfo.Status: SchemaEnumerable {}

/// Free-form: events' payloads, task details, QEMU's dumps, pre-flight checks.
extension JSON: SchemaDescribed, APIExample {
    public static var jsonSchema: JSONSchema { .any }
    public static var example: JSON { ["go": true] }
}

/// What a route that starts a task answers with 202 (SPEC §5).
struct TaskEnvelope: Encodable, APIExample {
    var task: TaskInfo
    static var example: TaskEnvelope { TaskEnvelope(task: .example) }
}

/// The query parameters the long polls share.
extension RouteDocumentation.QueryParameter {
    static let since = Self("since", .integer, "Answer what follows this cursor (the previous answer's `next`)")
    static let wait = Self("wait", .integer, "Seconds to wait for something new (0...60)")
}
