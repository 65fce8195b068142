import Dispatch
import Foundation
import Logging
import Synchronization

/// The embedded HTTP server: libmicrohttpd in epoll mode with its own threads, a `Router`
/// for dispatch, and suspend/resume for long polls and event streams.
public final class HTTPServer: Sendable {
    public let configuration: ServerConfiguration
    let router: Router
    let logger: Logger
    /// Whether each request is logged, decided once: asking the log handler costs a dynamic call per request.
    let logsRequests: Bool

    private struct Running {
        var daemon: Daemon
        var port: UInt16
        var heartbeat: DispatchSourceTimer
        var deadlines: DispatchSourceTimer
    }

    private let running = Mutex<Running?>(nil)
    /// Requests parked on a `DeferredResponse`, resumed at stop.
    let parked = Mutex<[ObjectIdentifier: RequestContext]>([:])
    /// Live event streams, for heartbeats and for closing at stop.
    let streams = Mutex<[ObjectIdentifier: EventStream]>([:])
    let stopping = Atomic<Bool>(false)
    /// Open connections and their request deadlines.
    let connections: ConnectionTracker
    /// Which `Host` values name this server.
    let hostPolicy: HostPolicy
    /// Request body bytes held or promised, against `maxBufferedBodyBytes`.
    private let bufferedBody = Atomic<Int>(0)

    public init(configuration: ServerConfiguration, router: Router, logger: Logger = Logger(label: "emupanel.http")) {
        self.configuration = configuration
        self.router = router
        self.logger = logger
        logsRequests = logger.logLevel <= .debug
        connections = ConnectionTracker(
            requestTimeoutSeconds: configuration.requestTimeoutSeconds,
            maxConnections: configuration.maxConnections,
            maxConnectionsPerClient: configuration.maxConnectionsPerIP)
        hostPolicy = HostPolicy(listenHost: configuration.host, names: configuration.hostNames)
    }

    /// Request body bytes buffered or promised to requests still arriving.
    public var bufferedBodyBytes: Int { bufferedBody.load(ordering: .relaxed) }

    /// Connections cut because their request did not arrive in time or to make room.
    public var cutConnections: Int { connections.cutCount.load(ordering: .sequentiallyConsistent) }

    /// Promises `bytes` of the body budget; false (nothing promised) when they do not fit.
    func reserveBody(_ bytes: Int) -> Bool {
        var current = bufferedBody.load(ordering: .relaxed)
        while true {
            guard current + bytes <= configuration.maxBufferedBodyBytes else { return false }
            let (exchanged, original) = bufferedBody.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    func releaseBody(_ bytes: Int) {
        if bytes > 0 { bufferedBody.subtract(bytes, ordering: .relaxed) }
    }

    /// Every registered route, for the OpenAPI document and its test.
    public var routes: [RouteInfo] { router.routes }

    /// The bound port (the kernel's choice when configured with 0); 0 before `start`.
    public var port: UInt16 { running.withLock { $0?.port ?? 0 } }

    public func start() throws {
        try configuration.validate()
        try running.withLock { running in
            guard running == nil else { return }
            let daemon = try Daemon.start(server: self)
            let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "emupanel.http.heartbeat"))
            let interval = configuration.heartbeatSeconds
            timer.schedule(deadline: .now() + interval, repeating: interval)
            timer.setEventHandler { [weak self] in self?.sendHeartbeats() }
            timer.resume()
            // Deadlines are checked a few times per timeout, at most once a second.
            let deadlines = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "emupanel.http.deadlines"))
            let every = min(1, max(0.05, configuration.requestTimeoutSeconds / 4))
            deadlines.schedule(deadline: .now() + every, repeating: every)
            deadlines.setEventHandler { [weak self] in self?.cutOverdueRequests() }
            deadlines.resume()
            running = Running(daemon: daemon, port: daemon.boundPort, heartbeat: timer, deadlines: deadlines)
        }
        logger.info("listening", metadata: ["host": "\(configuration.host)", "port": "\(port)"])
    }

    /// Stops accepting, answers parked long polls with 503, ends event streams, resumes every
    /// suspended connection (libmicrohttpd requires it) and shuts the daemon down.
    public func stop() {
        guard
            let current = running.withLock({ running -> Running? in
                defer { running = nil }
                return running
            })
        else { return }
        stopping.store(true, ordering: .sequentiallyConsistent)
        current.heartbeat.cancel()
        current.deadlines.cancel()
        // libmicrohttpd aborts the process if its daemon stops while a connection is suspended
        // and not resumed. Requests that park or stream after a snapshot wake themselves (they
        // check `stopping`); every round wakes again whatever is still listed, so each connection
        // left when the grace period ends has at least been resumed.
        let deadline = ContinuousClock.now + .seconds(2)
        while true {
            let parkedNow = parked.withLock { Array($0.values) }
            let streamsNow = streams.withLock { Array($0.values) }
            if parkedNow.isEmpty && streamsNow.isEmpty { break }
            for context in parkedNow { context.complete(with: shuttingDown) }
            for stream in streamsNow { stream.close() }
            // Give the woken connections a moment to send their last bytes before the daemon closes them all.
            if ContinuousClock.now >= deadline {
                logger.warning(
                    "stopping with connections still open",
                    metadata: [
                        "parked": "\(parkedNow.count)", "streams": "\(streamsNow.count)",
                    ])
                break
            }
            Thread.sleep(forTimeInterval: 0.005)
        }
        current.daemon.stop()
        logger.info("stopped")
    }

    private func cutOverdueRequests() {
        let cut = connections.cutOverdue()
        if cut > 0 {
            logger.notice(
                "closed connections whose request did not arrive in time",
                metadata: [
                    "connections": "\(cut)", "requestTimeoutSeconds": "\(configuration.requestTimeoutSeconds)",
                ])
        }
    }

    private func sendHeartbeats() {
        for stream in streams.withLock({ Array($0.values) }) { stream.comment() }
    }

    func register(stream: EventStream) {
        streams.withLock { $0[ObjectIdentifier(stream)] = stream }
        stream.onTermination { [weak self] in
            _ = self?.streams.withLock { $0.removeValue(forKey: ObjectIdentifier(stream)) }
        }
    }

    deinit {
        stop()
    }
}
