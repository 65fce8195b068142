import EmulatorCore
import Foundation
import HTTPServer
import Migration

/// The source side of a live migration: pre-flight at the destination, then pre-copy over the
/// dirty bitmap on a ticketed socket, switch-over within the downtime limit, and the
/// destination's verdict. On any failure or cancel the guest runs on here exactly as before.
extension GuestManager {
    func offer(for guest: GuestRecord, type: MachineType) -> JSON {
        [
            "guest": ["name": .string(guest.name), "image": .string(guest.image), "memoryMiB": .number(Double(guest.memoryMiB)),
                      "icount": .bool(guest.icount)],
            "machineType": .string(type.name),
            "release": .string(Release.current),
            "vmstate": .string(type.vmstateDump()),
        ]
    }

    /// Go / no-go with reasons, before any RAM moves.
    func preflight(_ id: String, target: MigrationTarget) throws -> JSON {
        let guest = try store.get(id)
        let type = try resolve(guest.machineType)
        var local: [JSON] = [
            ["name": "tier", "ok": .bool(type.tier != .none),
             "detail": .string(type.tier == .none ? type.blockers.map(\.description).joined(separator: "; ") : "\(type.name) is \(type.tier.rawValue)")],
            ["name": "guest state", "ok": .bool(guest.state == .running || guest.state == .paused),
             "detail": .string("the guest is \(guest.state.rawValue)")],
        ]
        let peer = try PeerClient.resolve(target, peers: peers)
        var remote: JSON = ["go": false, "checks": []]
        do {
            remote = try peer.post("/migrations/incoming/preflight", offer(for: guest, type: type))
        } catch {
            local.append(["name": "destination", "ok": false, "detail": .string(String(describing: error))])
        }
        var checks = local
        if case .array(let theirs)? = remote["checks"] { checks += theirs }
        let reasons: [JSON] = checks.compactMap { check in
            guard check["ok"] == .bool(false) else { return nil }
            if case .string(let name)? = check["name"], case .string(let detail)? = check["detail"] { return .string("\(name): \(detail)") }
            return nil
        }
        return ["go": .bool(reasons.isEmpty), "checks": .array(checks), "reasons": .array(reasons),
                "destination": ["url": .string(peer.baseURL.absoluteString), "release": remote["release"] ?? .null]]
    }

    func migrate(_ id: String, target: MigrationTarget, downtimeLimitMs: UInt64, maxBandwidth: UInt64) throws -> TaskInfo {
        let guest = try store.get(id)
        let type = try resolve(guest.machineType)
        try refuseIfUnmigratable(type, action: "migrate")
        guard guest.state == .running || guest.state == .paused, let runtime = runtimes.withLock({ $0[id] }) else {
            throw HTTPError(.conflict, code: "invalid_state", message: "only a running or paused guest migrates (it is \(guest.state.rawValue))")
        }
        guard Self.downtimeLimits.contains(downtimeLimitMs), Self.bandwidthLimits.contains(maxBandwidth) else {
            throw HTTPError(.unprocessableEntity, code: "invalid_transfer_limits",
                            message: "downtimeLimitMs must be 1...60000, maxBandwidth 0 (unlimited) ... 10^15 bytes/s")
        }
        let peer = try PeerClient.resolve(target, peers: peers)
        let transfer = TransferControl(downtimeLimitMs: downtimeLimitMs, maxBandwidth: maxBandwidth)
        let adjust: @Sendable (JSON) throws -> Void = { settings in
            if case .number(let value)? = settings["downtimeLimitMs"] {
                guard let limit = value.wholeNumber(in: Self.downtimeLimits) else {
                    throw HTTPError(.unprocessableEntity, code: "invalid_downtime", message: "downtimeLimitMs must be 1...60000")
                }
                transfer.downtimeLimitMs.store(limit, ordering: .relaxed)
            }
            if case .number(let value)? = settings["maxBandwidth"] {
                guard let bandwidth = value.wholeNumber(in: Self.bandwidthLimits) else {
                    throw HTTPError(.unprocessableEntity, code: "invalid_bandwidth", message: "maxBandwidth must be 0 (unlimited) ... 10^15 bytes/s")
                }
                transfer.maxBandwidth.store(bandwidth, ordering: .relaxed)
            }
        }
        let offer = offer(for: guest, type: type)
        return try tasks.start(kind: "migrate", guestId: id, adjust: adjust) { [self] handle in
            handle.onCancel { transfer.cancelled.store(true, ordering: .relaxed) }
            var stats = TransferStats()
            let report: @Sendable (TransferStats) -> Void = { handle.progress($0.progress, detail: Self.statsJSON($0)) }
            // 1. The destination checks again and hands out a one-time ticket.
            let ticket = try peer.post("/migrations/incoming", offer)
            guard case .string(let secret)? = ticket["ticket"], case .number(let portNumber)? = ticket["port"],
                  let port = portNumber.wholeNumber(in: 1...65_535) else {
                throw PeerError(status: 0, message: "the destination sent no usable ticket and port")
            }
            let socket = try TCPSocket.connect(host: peer.host, port: UInt16(port), timeout: 30)
            try socket.write(line: "EMUPANEL-MIGRATE 1 \(secret)")
            try setState(id, .migrating)
            var handedOver = false
            defer {
                if !handedOver {
                    // Failed or cancelled: the guest runs on here, as before.
                    if guest.state == .running { runtime.resume() }
                    _ = try? setState(id, guest.state)
                }
            }
            // 2. Pre-copy, then the guest parks for the last pages and the devices.
            do {
                stats = try runtime.machine.streamState(to: ThrottledSink(socket, transfer: transfer), transfer: transfer, progress: report)
            } catch let error as MigrationCancelled {
                socket.shutdown()
                stats.status = "cancelled"
                report(stats)
                throw error
            } catch {
                // The destination may have said why before it hung up (QEMU's source only sees EPIPE).
                socket.setTimeouts(2)
                if let line = try? socket.readLine(), line.hasPrefix("ERR ") {
                    throw PeerError(status: 0, message: String(line.dropFirst(4)))
                }
                throw PeerError(status: 0, message: "the stream broke: \(error)")
            }
            // 3. The destination's verdict; GO hands the guest over.
            let verdict = try socket.readLine() ?? "ERR the destination closed the connection"
            guard verdict == "OK" else {
                throw PeerError(status: 0, message: verdict.hasPrefix("ERR ") ? String(verdict.dropFirst(4)) : verdict)
            }
            try socket.write(line: "GO")
            handedOver = true
            runtime.stop()
            runtimes.withLock { _ = $0.removeValue(forKey: id) }
            try setState(id, .migrated)
            let started = (try? socket.readLine()) ?? nil
            stats.status = "completed"
            report(stats)
            var detail = Self.statsJSON(stats)
            if case .object(var object) = detail {
                object["destination"] = .string(peer.baseURL.absoluteString)
                if let started, started.hasPrefix("STARTED ") { object["destinationGuestId"] = .string(String(started.dropFirst(8))) }
                detail = .object(object)
            }
            events.publish("guest.migrated-out", subject: id, data: Self.eventData(try store.get(id)))
            return detail
        }
    }
}
