import Foundation
import HTTPServer
import HTTPTestSupport
import PanelCore
import RISCV
import Synchronization
import Testing

/// A migration offer carries its state descriptions' digest; their text (QEMU's riscv64 dump is
/// 600 KB) goes only to a destination whose own descriptions differ, which asks for it.
@Suite("Migration offers")
struct MigrationOfferTests {
    func createdGuest(on panel: PanelFixture) throws -> String {
        let created = try panel.send("POST", "/api/v1/guests", json: ["name": "mover", "image": "uboot", "machineType": "virt", "memoryMiB": 64])
        return try #require(try created.json()["id"] as? String, "\(created.text)")
    }

    @Test func identicalDescriptionsTravelAsTheirDigest() throws {
        let destination = try PanelFixture(machines: VirtMachineTypes.registry)
        let source = try PanelFixture(machines: VirtMachineTypes.registry)
        let id = try createdGuest(on: source)
        #expect(try source.send("POST", "/api/v1/guests/\(id)/start").status == 200)
        let target: [String: Any] = ["url": "http://127.0.0.1:\(destination.port)", "token": PanelFixture.token]
        let answer = try source.send("POST", "/api/v1/guests/\(id)/migrate/preflight", json: ["target": target]).json()
        #expect(answer["go"] as? Bool == true, "\(answer)")
        let statics = (answer["checks"] as? [[String: Any]] ?? []).filter { ($0["name"] as? String)?.hasPrefix("static check") == true }
        #expect(statics.count == 2 && statics.allSatisfy { $0["detail"] as? String == "identical state descriptions" }, "\(statics)")
    }

    @Test func aDestinationAsksForDescriptionsThatDiffer() throws {
        let destination = try PanelFixture(machines: VirtMachineTypes.registry)
        let offer: [String: Any] = [
            "guest": ["name": "x", "image": "uboot", "memoryMiB": 64, "icount": false],
            "machineType": "virt-1.2", "release": "1.2", "vmstateSHA256": String(repeating: "0", count: 64),
        ]
        for path in ["/api/v1/migrations/incoming/preflight", "/api/v1/migrations/incoming"] {
            let asked = try destination.send("POST", path, json: offer)
            #expect(asked.status == 409 && asked.errorCode == "vmstate_needed", "\(path): \(asked.text)")
        }
        let dump = try destination.get("/api/v1/machine-types/virt-1.2/vmstate").text
        let whole = try destination.send("POST", "/api/v1/migrations/incoming/preflight", json: offer.merging(["vmstate": dump]) { $1 }).json()
        #expect(whole["go"] as? Bool == true, "the text is checked instead: \(whole)")
    }

    /// The source sends its digest first and the text when asked.
    @Test func theSourceSendsTheTextWhenAsked() throws {
        let offers = Mutex<[[Bool]]>([])
        let peer = try FakePeer { request in
            let offer = (try? JSONSerialization.jsonObject(with: Data(request.body))) as? [String: Any] ?? [:]
            offers.withLock { $0.append([offer["vmstate"] is String, offer["vmstateSHA256"] is String]) }
            if offer["vmstate"] == nil {
                return .json(bytes: Array(#"{"error":{"code":"vmstate_needed","message":"send them whole"}}"#.utf8), status: HTTPStatus(409))
            }
            return .json(bytes: Array(#"{"go":true,"checks":[],"release":"9.9"}"#.utf8))
        }
        let source = try PanelFixture(machines: VirtMachineTypes.registry)
        let id = try createdGuest(on: source)
        #expect(try source.send("POST", "/api/v1/guests/\(id)/start").status == 200)
        let target: [String: Any] = ["url": "http://127.0.0.1:\(peer.port)", "token": "peer-token"]
        let answer = try source.send("POST", "/api/v1/guests/\(id)/migrate/preflight", json: ["target": target]).json()
        #expect(answer["go"] as? Bool == true, "\(answer)")
        let seen = offers.withLock { $0 }
        #expect(seen == [[false, true], [true, true]], "digest alone, then the text: \(seen)")
    }
}
