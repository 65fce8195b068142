// The only file that talks to libmicrohttpd. Contexts cross the C boundary as
// `Unmanaged` pointers: the server unretained (it outlives its daemon), a request's
// context (made only when the request needs one) retained until libmicrohttpd
// reports the request completed.
import CMicroHTTPD
import CMicroHTTPDAnswers
import Foundation
import Synchronization

/// A running libmicrohttpd daemon.
// @unchecked Sendable: the pointer is only used to stop, once, under the server's lock
struct Daemon: @unchecked Sendable {
    let pointer: OpaquePointer
    let boundPort: UInt16

    static func start(server: HTTPServer) throws -> Daemon {
        let config = server.configuration
        var flags =
            MHD_USE_EPOLL.rawValue | MHD_USE_INTERNAL_POLLING_THREAD.rawValue
            | MHD_ALLOW_SUSPEND_RESUME.rawValue | MHD_USE_TURBO.rawValue
        var address4 = sockaddr_in()
        var address6 = sockaddr_in6()
        let isIPv6: Bool
        if inet_pton(AF_INET, config.host, &address4.sin_addr) == 1 {
            address4.sin_family = sa_family_t(AF_INET)
            address4.sin_port = config.port.bigEndian
            isIPv6 = false
        } else if inet_pton(AF_INET6, config.host, &address6.sin6_addr) == 1 {
            address6.sin6_family = sa_family_t(AF_INET6)
            address6.sin6_port = config.port.bigEndian
            flags |= MHD_USE_IPv6.rawValue
            isIPv6 = true
        } else {
            throw ServerError.invalidAddress(config.host)
        }
        let completed: MHD_RequestCompletedCallback = requestCompleted
        let notified: MHD_NotifyConnectionCallback = connectionNotified
        installErrorAnswer()
        let pointer: OpaquePointer? = withUnsafeMutablePointer(to: &address4) { v4 in
            withUnsafeMutablePointer(to: &address6) { v6 in
                var options: [MHD_OptionItem] = [
                    // Per pool thread, libmicrohttpd's split: the whole limit for each, which
                    // ConnectionTracker enforces across them. Its per-address count frees a slot
                    // only once it has closed a connection the tracker cut, so it gets twice the
                    // limit (a backstop); the tracker enforces the limit itself.
                    MHD_OptionItem(option: .CONNECTION_LIMIT, value: config.maxConnections * max(1, config.threads), ptr_value: nil),
                    MHD_OptionItem(option: .PER_IP_CONNECTION_LIMIT, value: config.maxConnectionsPerIP * 2, ptr_value: nil),
                    MHD_OptionItem(option: .CONNECTION_TIMEOUT, value: config.connectionTimeoutSeconds, ptr_value: nil),
                    MHD_OptionItem(option: .CONNECTION_MEMORY_LIMIT, value: config.connectionMemoryBytes, ptr_value: nil),
                    MHD_OptionItem(
                        option: .SOCK_ADDR, value: 0,
                        ptr_value: isIPv6 ? UnsafeMutableRawPointer(v6) : UnsafeMutableRawPointer(v4)),
                    MHD_OptionItem(
                        option: .NOTIFY_COMPLETED, value: unsafeBitCast(completed, to: Int.self),
                        ptr_value: Unmanaged.passUnretained(server).toOpaque()),
                    MHD_OptionItem(
                        option: .NOTIFY_CONNECTION, value: unsafeBitCast(notified, to: Int.self),
                        ptr_value: Unmanaged.passUnretained(server).toOpaque()),
                    // Sees each target before libmicrohttpd decodes it (`RequestTarget`); what it
                    // returns is the request's first `*con_cls`.
                    MHD_OptionItem(option: .URI_LOG_CALLBACK, value: unsafeBitCast(targetSeen, to: Int.self), ptr_value: nil),
                ]
                if config.threads > 1 {
                    options.append(MHD_OptionItem(option: .THREAD_POOL_SIZE, value: config.threads, ptr_value: nil))
                }
                options.append(MHD_OptionItem(option: .END, value: 0, ptr_value: nil))
                return emupanel_mhd_start(
                    flags, config.port, accessHandler,
                    Unmanaged.passUnretained(server).toOpaque(), options)
            }
        }
        guard let pointer else {
            throw ServerError.startFailed("libmicrohttpd refused to start on \(config.host):\(config.port) (port in use or no permission)")
        }
        return Daemon(pointer: pointer, boundPort: emupanel_mhd_bound_port(pointer))
    }

    func stop() {
        MHD_stop_daemon(pointer)
    }
}

/// A connection pointer handed to other threads for suspend and resume only.
// @unchecked Sendable: MHD allows resume from any thread; suspend is only called from MHD's callbacks
struct ConnectionHandle: SuspendableConnection, @unchecked Sendable {
    let pointer: OpaquePointer
    func suspend() { MHD_suspend_connection(pointer) }
    func resume() { MHD_resume_connection(pointer) }
}

/// One request's state across libmicrohttpd's calls to the access handler.
// @unchecked Sendable: body fields are touched only by the daemon thread owning the connection; `parking` is locked
final class RequestContext: @unchecked Sendable {
    var body: [UInt8] = []
    var answered = false
    /// The most body this request may bring (its route's limit, or the server's).
    var bodyLimit = 0
    /// Bytes of the server's body budget promised to this request, returned when it completes.
    var reserved = 0
    /// The answer for a body that is being read and dropped (too large, or over the budget):
    /// libmicrohttpd only lets a response be queued before or after the body.
    var refusal: Response?
    var discarded = 0
    /// How much of a refused body is read and dropped to answer cleanly.
    static let drainCap = 64 << 20

    private struct Parking {
        var connection: ConnectionHandle?
        var suspended = false
        var ready: Response?
        var finished = false
    }

    private let parking = Mutex(Parking())
    var stream: EventStream?

    /// A new context owned by libmicrohttpd's `*con_cls` slot until `requestCompleted`.
    @discardableResult
    static func make(in slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> RequestContext {
        let context = RequestContext()
        slot.pointee = Unmanaged.passRetained(context).toOpaque()
        return context
    }

    /// The slot's context, if this request has one yet.
    static func existing(in slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> RequestContext? {
        guard let pointer = slot.pointee, !Mark.isMark(pointer) else { return nil }
        return Unmanaged<RequestContext>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Park this request until `complete(with:)`.
    func park(on connection: OpaquePointer, server: HTTPServer) {
        let handle = ConnectionHandle(pointer: connection)
        // Suspended before it is listed, so whoever completes it from the list resumes it.
        parking.withLock {
            $0.connection = handle
            $0.suspended = true
            handle.suspend()
        }
        server.parked.withLock { $0[ObjectIdentifier(self)] = self }
        // `stop()` may have taken its snapshot between the router's `stopping` check and the
        // listing above: then nothing else would wake this connection, and stopping the daemon
        // with it suspended aborts the process (MHD_PANIC).
        if server.stopping.load(ordering: .sequentiallyConsistent) {
            complete(with: shuttingDown)
        }
    }

    /// Stores the response and wakes the connection; later completions are ignored.
    func complete(with response: Response) {
        parking.withLock { parking in
            guard !parking.finished, parking.ready == nil else { return }
            parking.ready = response
            if parking.suspended, let connection = parking.connection {
                parking.suspended = false
                connection.resume()
            }
        }
    }

    func takeReady() -> Response? {
        parking.withLock { parking in
            defer { parking.ready = nil }
            return parking.ready
        }
    }

    func finish() {
        parking.withLock {
            $0.finished = true
            $0.connection = nil
        }
    }
}

// MARK: - Callbacks

/// Values of `*con_cls` that are no object: only compared, never dereferenced. Addresses 1–3 can
/// be no object's, so they never collide with a context.
private enum Mark {
    /// Headers seen, no state needed so far: most requests are answered on the next call and
    /// never allocate a context; one is made on demand (a body, a deferred or streamed response).
    static var headersSeen: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: 1)! }
    /// Set by `targetSeen` before the first call: the request target cannot be routed.
    static var badPath: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: 2)! }
    static var badQuery: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: 3)! }

    static func isMark(_ pointer: UnsafeMutableRawPointer) -> Bool { UInt(bitPattern: pointer) <= 3 }
}

/// libmicrohttpd's URI log callback: the raw target, before it is split and decoded.
private let targetSeen: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, OpaquePointer?) -> UnsafeMutableRawPointer? = {
    _, target, _ in
    guard let target else { return nil }
    switch RequestTarget.check(target) {
    case .routable: return nil
    case .badPath: return Mark.badPath
    case .badQuery: return Mark.badQuery
    }
}

private let connectionNotified: MHD_NotifyConnectionCallback = { cls, connection, socketContext, event in
    guard let cls, let connection, let socketContext else { return }
    let server = Unmanaged<HTTPServer>.fromOpaque(cls).takeUnretainedValue()
    switch event {
    case MHD_ConnectionNotificationCode.CONNECTION_NOTIFY_STARTED:
        let tracked = server.connections.opened(
            socket: emupanel_mhd_connection_fd(connection),
            client: ClientAddress(emupanel_mhd_client_sockaddr(connection)))
        socketContext.pointee = Unmanaged.passRetained(tracked).toOpaque()
    case MHD_ConnectionNotificationCode.CONNECTION_NOTIFY_CLOSED:
        guard let pointer = socketContext.pointee else { return }
        socketContext.pointee = nil
        server.connections.closed(Unmanaged<ConnectionTracker.Connection>.fromOpaque(pointer).takeRetainedValue())
    default:
        break
    }
}

/// The connection's entry in the tracker (owned by its socket context), if it has one.
private func trackedConnection(_ connection: OpaquePointer) -> ConnectionTracker.Connection? {
    emupanel_mhd_socket_context(connection).map { Unmanaged<ConnectionTracker.Connection>.fromOpaque($0).takeUnretainedValue() }
}

private let accessHandler: MHD_AccessHandlerCallback = { cls, connection, url, method, version, uploadData, uploadSize, contextSlot in
    guard let cls, let connection, let contextSlot, let uploadSize else { return MHD_Result.NO }
    // The server outlives its daemon; borrowing it skips a retain and release per call on a
    // counter that both daemon threads would otherwise contend for.
    return Unmanaged<HTTPServer>.fromOpaque(cls)._withUnsafeGuaranteedRef { server in
        handle(
            connection: connection, url: url, method: method, version: version, uploadData: uploadData,
            uploadSize: uploadSize, slot: contextSlot, server: server)
    }
}

private func handle(
    connection: OpaquePointer, url: UnsafePointer<CChar>?, method: UnsafePointer<CChar>?,
    version: UnsafePointer<CChar>?, uploadData: UnsafePointer<CChar>?, uploadSize: UnsafeMutablePointer<Int>,
    slot contextSlot: UnsafeMutablePointer<UnsafeMutableRawPointer?>, server: HTTPServer
) -> MHD_Result {
    let isAPI = url.map(server.router.isAPI) ?? false
    let existing = contextSlot.pointee
    if existing == nil || existing == Mark.badPath || existing == Mark.badQuery {
        // First call: headers only. Answering now makes MHD 0.9.75 close the connection after
        // the response, so only what must not go further is refused here; a request that will
        // bring a body is admitted (limit, credentials, budget) before a byte of it is read.
        let admission = admit(
            connection: connection, url: url, method: method, version: version,
            mark: existing, server: server)
        switch admission {
        case .refused(let refusal):
            let context = RequestContext.make(in: contextSlot)
            context.answered = true
            return queue(refusal, on: connection, slot: contextSlot, server: server, isAPI: isAPI)
        case .noBody:
            contextSlot.pointee = Mark.headersSeen
        case .body(let limit, let reserved):
            let context = RequestContext.make(in: contextSlot)
            context.bodyLimit = limit
            context.reserved = reserved
        }
        return MHD_Result.YES
    }

    if existing == Mark.headersSeen {
        if uploadSize.pointee == 0 {
            // The whole request is in: no body arrived, so no context was needed.
            return answer(connection: connection, method: method, url: url, body: [], slot: contextSlot, server: server, isAPI: isAPI)
        }
        // A body nobody announced (libmicrohttpd knows no other framing, but be safe).
        let context = RequestContext.make(in: contextSlot)
        context.bodyLimit = server.configuration.maxBodyBytes
    }
    let context = Unmanaged<RequestContext>.fromOpaque(contextSlot.pointee!).takeUnretainedValue()

    if uploadSize.pointee > 0 {
        let count = uploadSize.pointee
        uploadSize.pointee = 0
        if context.answered { return MHD_Result.YES }
        if context.refusal == nil {
            let needed = context.body.count + count
            if needed > context.bodyLimit {
                context.refusal = tooLarge(context.bodyLimit)
            } else if needed > context.reserved {
                if server.reserveBody(needed - context.reserved) {
                    context.reserved = needed
                } else {
                    context.refusal = bodyBudgetFull
                }
            }
            if context.refusal != nil {
                context.body = []
                server.releaseBody(context.reserved)
                context.reserved = 0
            }
        }
        if context.refusal != nil {
            // libmicrohttpd only queues a response before or after the body, so a refused body
            // is read and dropped, then answered; past the drain cap the connection is cut.
            context.discarded += count
            return context.discarded > RequestContext.drainCap ? MHD_Result.NO : MHD_Result.YES
        }
        if let uploadData {
            context.body.append(contentsOf: UnsafeRawBufferPointer(start: uploadData, count: count))
        }
        return MHD_Result.YES
    }
    if let refusal = context.refusal {
        context.refusal = nil
        context.answered = true
        return queue(refusal, on: connection, slot: contextSlot, server: server, isAPI: isAPI)
    }
    if let ready = context.takeReady() {
        server.parked.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(context)) }
        return queue(ready, on: connection, slot: contextSlot, server: server, isAPI: isAPI)
    }
    if context.answered { return MHD_Result.YES }
    context.answered = true
    let body = context.body
    context.body = []
    return answer(connection: connection, method: method, url: url, body: body, slot: contextSlot, server: server, isAPI: isAPI)
}

/// What the head of a request decides before anything else is read.
private enum Admission {
    case refused(Response)
    case noBody
    /// A body is coming: at most `limit` bytes, `reserved` of them promised from the budget.
    case body(limit: Int, reserved: Int)
}

private func admit(
    connection: OpaquePointer, url: UnsafePointer<CChar>?, method methodName: UnsafePointer<CChar>?,
    version: UnsafePointer<CChar>?, mark: UnsafeMutableRawPointer?, server: HTTPServer
) -> Admission {
    if mark == Mark.badPath {
        return .refused(
            HTTPError(
                .badRequest, code: "bad_path",
                message:
                    "the path holds a byte no route can hold (NUL or another control character, an encoded '/', '\\\\', a '.' or '..' segment, or bytes that are not UTF-8)"
            ).response)
    }
    if mark == Mark.badQuery {
        return .refused(HTTPError(.badRequest, code: "invalid_query", message: "the query holds an encoded NUL (%00)").response)
    }
    let http10 = version.map { strcmp($0, "HTTP/1.0") == 0 } ?? false
    switch server.hostPolicy.check(MHD_lookup_connection_value(connection, MHD_ValueKind.HEADER_KIND, "Host"), http10: http10) {
    case .allowed:
        break
    case .missing:
        return .refused(HTTPError(.badRequest, code: "bad_request", message: "an HTTP/1.1 request must name the server in Host").response)
    case .misdirected:
        return .refused(
            HTTPError(
                .misdirected, code: "misdirected",
                message: "this server does not answer to the name in Host; add it to the server's hostNames if it should"
            ).response)
    }

    let framing = BodyFraming.read(connection)
    if let problem = framing.problem {
        return .refused(HTTPError(.badRequest, code: "bad_request", message: problem).response)
    }
    let length = framing.length ?? 0
    if length == 0 && !framing.chunked { return .noBody }

    guard let methodName, let method = HTTPMethod(cString: methodName) else {
        let name = methodName.map { String(cString: $0) } ?? ""
        return .refused(notImplemented(name))
    }
    let path = url.map { String(cString: $0) } ?? "/"
    let admission = server.router.bodyAdmission(method: method, path: path)
    let limit = min(admission?.maxBodyBytes ?? server.configuration.maxBodyBytes, server.configuration.maxBodyBytes)
    if length > limit { return .refused(tooLarge(limit)) }
    if let admission, !admission.authenticators.isEmpty {
        let head = buildRequest(connection: connection, method: method, path: path, body: [])
        for authenticator in admission.authenticators {
            if let refusal = authenticator.refusalBeforeBody(head) { return .refused(refusal.response) }
        }
    }
    // A length announced up front is promised whole, so the body is never refused halfway.
    if length > 0, !server.reserveBody(length) { return .refused(bodyBudgetFull) }
    return .body(limit: limit, reserved: length)
}

/// How the request says its body is delimited, from all of its headers (libmicrohttpd's lookup
/// sees only the first of each): anything ambiguous could be read one way here and another way by
/// a proxy in front (request smuggling), so it is refused (RFC 9112 §6.1, §6.3). That includes a
/// folded line (obs-fold, RFC 9112 §5.2): libmicrohttpd 0.9.75 appends a continuation to the
/// header's *name*, so `Transfer-Encoding: x` folded onto ` chunked` arrives as a header named
/// `Transfer-Encodingchunked` and the body would go unread, while a proxy may have honoured it.
private struct BodyFraming {
    var length: Int?
    var chunked = false
    var problem: String?

    private struct Seen {
        var lengths: [String] = []
        var codings: [String] = []
        var folded = false
    }

    static func read(_ connection: OpaquePointer) -> BodyFraming {
        var seen = Seen()
        withUnsafeMutablePointer(to: &seen) { pointer in
            _ = MHD_get_connection_values(connection, MHD_ValueKind.HEADER_KIND, collectFraming, pointer)
        }
        var framing = BodyFraming()
        if seen.lengths.isEmpty && seen.codings.isEmpty && !seen.folded { return framing }
        if seen.folded {
            framing.problem = "a header line folded onto the next (obs-fold) around Content-Length or Transfer-Encoding"
        } else if !seen.codings.isEmpty && !seen.lengths.isEmpty {
            framing.problem = "a request may carry Content-Length or Transfer-Encoding, not both"
        } else if !seen.codings.isEmpty {
            if seen.codings.count == 1, seen.codings[0].trimmingCharacters(in: .whitespaces).lowercased() == "chunked" {
                framing.chunked = true
            } else {
                framing.problem = "the only transfer coding accepted is a single 'chunked'"
            }
        } else {
            let values = Set(seen.lengths.map { $0.trimmingCharacters(in: .whitespaces) })
            if values.count == 1, let value = values.first, let length = Int(value), length >= 0 {
                framing.length = length
            } else {
                framing.problem = "conflicting Content-Length headers"
            }
        }
        return framing
    }

    private static let collectFraming: MHD_KeyValueIterator = { cls, _, key, value in
        guard let cls, let key else { return MHD_Result.YES }
        let seen = cls.assumingMemoryBound(to: Seen.self)
        // Compared in C: this runs over every header of every request.
        if strncasecmp(key, "Content-Length", 14) == 0 {
            if key[14] == 0 { seen.pointee.lengths.append(value.map { String(cString: $0) } ?? "") } else { seen.pointee.folded = true }
        } else if strncasecmp(key, "Transfer-Encoding", 17) == 0 {
            if key[17] == 0 { seen.pointee.codings.append(value.map { String(cString: $0) } ?? "") } else { seen.pointee.folded = true }
        }
        return MHD_Result.YES
    }
}

/// Routes a complete request and queues (or parks) its response.
private func answer(
    connection: OpaquePointer, method: UnsafePointer<CChar>?, url: UnsafePointer<CChar>?,
    body: [UInt8], slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>, server: HTTPServer,
    isAPI: Bool
) -> MHD_Result {
    guard let method = method.flatMap(HTTPMethod.init(cString:)) else {
        return queue(notImplemented(method.map { String(cString: $0) } ?? ""), on: connection, slot: slot, server: server, isAPI: isAPI)
    }
    if server.stopping.load(ordering: .relaxed) {
        return queue(shuttingDown, on: connection, slot: slot, server: server, isAPI: isAPI)
    }
    let request = buildRequest(
        connection: connection, method: method,
        path: url.map { String(cString: $0) } ?? "/", body: body)
    let path = server.logsRequests ? request.path : ""
    let response = server.router.respond(to: request)
    if server.logsRequests {
        server.logger.debug("\(method.rawValue) \(path) \(response.status.rawValue)")
    }
    return queue(response, on: connection, slot: slot, server: server, isAPI: isAPI)
}

private let requestCompleted: MHD_RequestCompletedCallback = { cls, connection, contextSlot, _ in
    guard let cls else { return }
    let server = Unmanaged<HTTPServer>.fromOpaque(cls).takeUnretainedValue()
    if let connection { trackedConnection(connection)?.requestFinished() }
    guard let contextSlot, let pointer = contextSlot.pointee else { return }
    contextSlot.pointee = nil
    if Mark.isMark(pointer) { return }
    let context = Unmanaged<RequestContext>.fromOpaque(pointer).takeRetainedValue()
    context.finish()
    server.releaseBody(context.reserved)
    context.reserved = 0
    // A parked request whose client left ends here without taking its response: unlist it,
    // or `stop()` would wait for it.
    _ = server.parked.withLock { $0.removeValue(forKey: ObjectIdentifier(context)) }
    context.stream?.detach()
    context.stream = nil
}

/// The answer to requests caught by `stop()`.
var shuttingDown: Response {
    HTTPError(.serviceUnavailable, code: "shutting_down", message: "the server is stopping").response
}

private func tooLarge(_ limit: Int) -> Response {
    HTTPError(.payloadTooLarge, code: "payload_too_large", message: "request body exceeds \(limit) bytes").response
}

private var bodyBudgetFull: Response {
    HTTPError(
        .serviceUnavailable, code: "busy", message: "the server holds as many request bodies as it may; retry in a moment",
        headers: [("Retry-After", "1")]
    ).response
}

/// Not a method any route could have (TRACE, CONNECT, made-up ones): 501, not 405, which would
/// have to list the allowed methods (RFC 9110 §15.6.2).
private func notImplemented(_ name: String) -> Response {
    HTTPError(.notImplemented, code: "not_implemented", message: "the server does not implement the \(name) method").response
}

/// Hands a response to libmicrohttpd, or parks the connection for a deferred one.
/// Only deferred and streamed responses need a context; the slot gets one if it has none.
private func queue(
    _ response: Response, on connection: OpaquePointer,
    slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>, server: HTTPServer, isAPI: Bool
) -> MHD_Result {
    // The request is in (or refused from its head): its deadline no longer runs.
    trackedConnection(connection)?.requestReceived()
    let mhdResponse: OpaquePointer?
    switch response.body {
    case .bytes(let bytes):
        mhdResponse = bytes.withUnsafeBytes { buffer in
            MHD_create_response_from_buffer(
                buffer.count, UnsafeMutableRawPointer(mutating: buffer.baseAddress),
                .RESPMEM_MUST_COPY)
        }
    case .file(let file):
        // libmicrohttpd closes the descriptor when the response is destroyed.
        mhdResponse = MHD_create_response_from_fd64(file.size, file.descriptor)
    case .deferred(let deferred):
        let context = RequestContext.existing(in: slot) ?? RequestContext.make(in: slot)
        context.answered = true
        context.park(on: connection, server: server)
        deferred.onComplete { [context] in context.complete(with: $0) }
        return MHD_Result.YES
    case .stream(let stream):
        let retained = Unmanaged.passRetained(stream).toOpaque()
        mhdResponse = MHD_create_response_from_callback(UInt64.max, 16 << 10, streamReader, retained, streamRelease)
        if mhdResponse != nil {
            let context = RequestContext.existing(in: slot) ?? RequestContext.make(in: slot)
            context.answered = true
            stream.attach(ConnectionHandle(pointer: connection))
            context.stream = stream
            server.register(stream: stream)
            // As in `park`: a stream registered after `stop()` took its snapshot closes itself.
            if server.stopping.load(ordering: .sequentiallyConsistent) { stream.close() }
        } else {
            Unmanaged<EventStream>.fromOpaque(retained).release()
        }
    }
    guard let mhdResponse else { return MHD_Result.NO }
    for (name, value) in response.headers {
        // The API's answers are never stored (SPEC §6 via issue 11): the policy's value wins.
        if isAPI, strcasecmp(name, "Cache-Control") == 0 { continue }
        _ = MHD_add_response_header(mhdResponse, name, value)
    }
    for header in isAPI ? SecurityHeaders.api : SecurityHeaders.page {
        _ = MHD_add_response_header(mhdResponse, header.name, header.value)
    }
    let result = emupanel_mhd_queue_response(connection, UInt32(response.status.rawValue), mhdResponse)
    MHD_destroy_response(mhdResponse)
    return result
}

private let streamReader: MHD_ContentReaderCallback = { cls, _, buffer, max in
    guard let cls, let buffer else { return MHD_CONTENT_READER_END_WITH_ERROR }
    let stream = Unmanaged<EventStream>.fromOpaque(cls).takeUnretainedValue()
    switch stream.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: max)) {
    case .bytes(let count): return count
    case .end: return MHD_CONTENT_READER_END_OF_STREAM
    case .suspended: return 0
    }
}

private let streamRelease: MHD_ContentReaderFreeCallback = { cls in
    guard let cls else { return }
    Unmanaged<EventStream>.fromOpaque(cls).release()
}

// MARK: - libmicrohttpd's own errors

/// Installs, once per process, the answer to the errors libmicrohttpd finds itself (see
/// CMicroHTTPDAnswers/answers.c): the same JSON error shape and headers as every other answer.
private func installErrorAnswer() {
    _ = errorAnswerInstalled
}

private let errorAnswerInstalled: Void = {
    emupanel_mhd_set_error_answer(libraryErrorAnswer)
}()

/// Writes the whole answer to the socket and has libmicrohttpd close the connection, as it
/// would after its own answer. The answer is small and the first thing sent on this request,
/// so it fits the socket's empty send buffer.
private let libraryErrorAnswer: emupanel_mhd_error_answer = { connection, status in
    guard let connection else { return MHD_Result.NO }
    let socket = emupanel_mhd_connection_fd(connection)
    if socket >= 0 {
        let bytes = LibraryErrors.answer(status: Int(status))
        _ = bytes.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
    }
    return MHD_Result.NO
}

/// The answers for what libmicrohttpd refuses before the server sees a request.
private enum LibraryErrors {
    static func error(for status: Int) -> HTTPError {
        switch status {
        case 400:
            HTTPError(
                .badRequest, code: "bad_request", message: "the request is not valid HTTP/1.1 (request line, a header, Content-Length or a chunk)")
        case 413: HTTPError(.payloadTooLarge, code: "payload_too_large", message: "the announced body or chunk is larger than the server reads")
        case 414: HTTPError(HTTPStatus(414), code: "uri_too_long", message: "the request target is longer than the server reads")
        case 431: HTTPError(HTTPStatus(431), code: "headers_too_large", message: "the request's headers are larger than the server reads")
        case 505: HTTPError(HTTPStatus(505), code: "http_version_not_supported", message: "the server speaks HTTP/1.0 and HTTP/1.1")
        default: HTTPError(HTTPStatus(status), code: status >= 500 ? "internal_error" : "bad_request", message: "the request could not be handled")
        }
    }

    static func answer(status: Int) -> [UInt8] {
        let response = error(for: status).response
        guard case .bytes(let body) = response.body else { return [] }
        let reason = MHD_get_reason_phrase_for(UInt32(status)).map { String(cString: $0) } ?? "Error"
        var head = "HTTP/1.1 \(status) \(reason)\r\nDate: \(httpDate())\r\nConnection: close\r\n"
        for (name, value) in response.headers { head += "\(name): \(value)\r\n" }
        for header in SecurityHeaders.api { head += "\(String(cString: header.name)): \(String(cString: header.value))\r\n" }
        head += "Content-Length: \(body.count)\r\n\r\n"
        return Array(head.utf8) + body
    }

    /// RFC 9110 §5.6.7's IMF-fixdate, as libmicrohttpd writes it.
    static func httpDate() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}

// MARK: - Reading the request

/// Header, cookie and query values gathered by libmicrohttpd's iterator, on the caller's stack.
private struct RequestValues {
    var headers = HTTPHeaders()
    var cookies: [String: String] = [:]
    var query: [String: String] = [:]
}

private let collectValue: MHD_KeyValueIterator = { cls, kind, key, value in
    guard let cls, let key else { return MHD_Result.YES }
    let values = cls.assumingMemoryBound(to: RequestValues.self)
    let name = String(cString: key)
    let text = value.map { String(cString: $0) } ?? ""
    switch kind {
    case MHD_ValueKind.HEADER_KIND: values.pointee.headers.add(name, text)
    case MHD_ValueKind.COOKIE_KIND: values.pointee.cookies[name] = text
    case MHD_ValueKind.GET_ARGUMENT_KIND: values.pointee.query[name] = text
    default: break
    }
    return MHD_Result.YES
}

private func buildRequest(connection: OpaquePointer, method: HTTPMethod, path: String, body: [UInt8]) -> Request {
    var values = RequestValues()
    // One pass over headers, cookies and query arguments: the C API takes a bit mask of kinds.
    let kinds = MHD_ValueKind.HEADER_KIND.rawValue | MHD_ValueKind.COOKIE_KIND.rawValue | MHD_ValueKind.GET_ARGUMENT_KIND.rawValue
    withUnsafeMutablePointer(to: &values) { pointer in
        _ = MHD_get_connection_values(connection, unsafeBitCast(kinds, to: MHD_ValueKind.self), collectValue, pointer)
    }
    var request = Request(
        method: method, path: path, query: values.query, headers: values.headers,
        cookies: values.cookies, body: body)
    request.client = ClientAddress(emupanel_mhd_client_sockaddr(connection))
    return request
}

extension HTTPMethod {
    /// The method token libmicrohttpd hands over, matched without building a `String`.
    init?(cString: UnsafePointer<CChar>) {
        switch (cString[0], cString[1]) {
        case (0x47, _) where strcmp(cString, "GET") == 0: self = .GET
        case (0x50, 0x4F) where strcmp(cString, "POST") == 0: self = .POST
        case (0x50, 0x55) where strcmp(cString, "PUT") == 0: self = .PUT
        case (0x50, 0x41) where strcmp(cString, "PATCH") == 0: self = .PATCH
        case (0x48, _) where strcmp(cString, "HEAD") == 0: self = .HEAD
        case (0x44, _) where strcmp(cString, "DELETE") == 0: self = .DELETE
        case (0x4F, _) where strcmp(cString, "OPTIONS") == 0: self = .OPTIONS
        default: return nil
        }
    }
}
