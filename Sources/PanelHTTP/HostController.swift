import Foundation
import HTTPServer
import PanelCore

/// What this host is: `/health` for probes (no auth) and `/host` for the overview page.
struct HostController: Sendable {
    let configuration: PanelConfiguration
    let listenAddress: @Sendable () -> String
    let startedAt: Date
    let counts: @Sendable () -> HostCounts
    let limits: Quotas.Description
    let warnings: @Sendable () -> [String]

    struct Health: APIExample {
        var status = "ok"
        var release = Release.current
        static var example: Health { Health() }
    }

    struct HostInfo: APIExample {
        var release: String
        var hostname: String
        var listen: String
        var startedAt: String
        var uptimeSeconds: Int
        var peers: [PeerInfo]
        var counts: HostCounts
        /// Every limit a client must respect: the UI and the command line read them here.
        var limits: Quotas.Description
        /// What start-up recovery found that a person should know.
        var warnings: [String]
    }

    struct PeerInfo: Encodable { var name: String; var url: String }

    func addRoutes(to api: RouteGroup) {
        let health = Array((try? JSONEncoder().encode(Health())) ?? Data())
        api.get("/health", summary: "Liveness probe; needs no token", public: true, doc: .init(answer: Health.self)) { _ in
            .json(bytes: health)
        }
        api.get("/host", summary: "This host: release, peers and counts", doc: .init(answer: HostInfo.self)) { _ in
            .json(
                HostInfo(
                    release: Release.current,
                    hostname: ProcessInfo.processInfo.hostName,
                    listen: listenAddress(),
                    startedAt: startedAt.formatted(.iso8601),
                    uptimeSeconds: Int(Date().timeIntervalSince(startedAt)),
                    peers: configuration.settings.peers.map { PeerInfo(name: $0.name, url: $0.url) },
                    counts: counts(), limits: limits, warnings: warnings()))
        }
    }
}

extension HostController.HostInfo {
    static var example: Self {
        Self(
            release: Release.current, hostname: "host-a", listen: "127.0.0.1:8080", startedAt: "2026-12-03T20:00:00Z",
            uptimeSeconds: 60, peers: [.init(name: "b", url: "http://127.0.0.1:8081")], counts: .example,
            limits: .init(memoryMiB: .init(min: 16, max: 2048), maxGuests: 32, maxTotalMemoryMiB: 16_384, maxSnapshotBytes: 1 << 36),
            warnings: ["guest demo was left running without a saved state (the panel was killed); it is stopped"])
    }
}
