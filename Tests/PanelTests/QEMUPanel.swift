import Foundation
import HTTPTestSupport
import PanelCore
import RISCV
import Testing

/// Panels with the QEMU backend on, for the tests against the installed QEMU (skipped visibly
/// without it). Discovery is limited to the binaries a test needs and shares one cache for the
/// test process, so only the first panel probes.
enum QEMUPanel {
    static func installed(_ name: String) -> Bool {
        (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
            .contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }

    static let riscv64 = installed("qemu-system-riscv64")
    static let x86_64 = installed("qemu-system-x86_64")

    static let cache: String = {
        let path = NSTemporaryDirectory() + "emupanel-panel-qemu-cache-\(getpid())"
        atexit { try? FileManager.default.removeItem(atPath: QEMUPanel.cache) }
        return path
    }()

    static func panel(dataDir: String? = nil, binaries: [String] = ["qemu-system-riscv64"]) throws -> PanelFixture {
        try PanelFixture(machines: VirtMachineTypes.registry) { configuration in
            if let dataDir { configuration.settings.dataDir = dataDir }
            configuration.settings.qemu = .init(enabled: true, binaries: binaries, cacheDir: cache)
        }
    }

    /// Waits until the panel's discovery has probed its binaries (the first probe of
    /// qemu-system-x86_64's sixty-odd machine types takes a while on a busy host).
    static func waitForDiscovery(_ panel: PanelFixture, timeout: Double = 180) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if (try panel.get("/api/v1/host").json()["qemu"] as? [String: Any])?["status"] as? String == "ready" { return }
            usleep(50_000)
        }
        Issue.record("QEMU discovery did not finish within \(timeout) s")
    }

    /// Creates and starts a QEMU guest; its id.
    static func started(
        _ panel: PanelFixture, name: String, image: String, machineType: String = "virt",
        memoryMiB: Int = 64
    ) throws -> String {
        let created = try panel.send(
            "POST", "/api/v1/guests",
            json: [
                "name": name, "image": image, "machineType": machineType, "memoryMiB": memoryMiB, "backend": "qemu",
            ])
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(try created.json()["id"] as? String, "\(created.text)")
        let start = try panel.send("POST", "/api/v1/guests/\(id)/start")
        #expect(start.status == 200, "\(start.text)")
        return id
    }

    /// Waits until the guest's record says `state`.
    static func waitForState(_ panel: PanelFixture, _ id: String, _ state: String, timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last: String?
        while Date() < deadline {
            last = try panel.get("/api/v1/guests/\(id)").json()["state"] as? String
            if last == state { return }
            usleep(20_000)
        }
        Issue.record("guest \(id) stayed \(last ?? "unknown"), never \(state)")
    }
}
