import HTTPServer
import PanelCore

/// Resource graphs: a guest's and the panel's recent samples (`GuestMetrics`); live ones follow on
/// the event stream (`/events/stream?metrics=true`).
struct MetricsController: Sendable {
    let metrics: GuestMetrics

    func addRoutes(to api: RouteGroup) {
        api.get(
            "/guests/{id}/metrics",
            summary: "The guest's recent samples, oldest first: instructions and dirty pages per second, host CPU of its thread, resident RAM",
            doc: .init(answer: MetricsSeries.self)
        ) { request in
            .json(try metrics.series(guest: try request.parameter("id")))
        }
        api.get(
            "/host/metrics", summary: "The panel's recent samples: its CPU and RSS, all guests' instructions and dirty pages per second",
            doc: .init(answer: MetricsSeries.self)
        ) { _ in
            .json(metrics.hostSeries())
        }
    }
}

extension MetricsSeries: APIExample { public static var example: MetricsSeries { APIExamples.metricsSeries } }
extension TaskLogLine: APIExample { public static var example: TaskLogLine { APIExamples.taskLogLine } }
