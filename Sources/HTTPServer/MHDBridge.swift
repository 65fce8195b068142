// The only file that talks to libmicrohttpd. Contexts cross the C boundary as
// `Unmanaged` pointers: the server unretained (it outlives its daemon), a request's
// context (made only when the request needs one) retained until libmicrohttpd
// reports the request completed.
import CMicroHTTPD
import Foundation
import Synchronization

/// A running libmicrohttpd daemon.
struct Daemon: @unchecked Sendable { // the pointer is only used to stop, once, under the server's lock
    let pointer: OpaquePointer
    let boundPort: UInt16

    static func start(server: HTTPServer) throws -> Daemon {
        let config = server.configuration
        var flags = MHD_USE_EPOLL.rawValue | MHD_USE_INTERNAL_POLLING_THREAD.rawValue
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
        let pointer: OpaquePointer? = withUnsafeMutablePointer(to: &address4) { v4 in
            withUnsafeMutablePointer(to: &address6) { v6 in
                var options: [MHD_OptionItem] = [
                    MHD_OptionItem(option: .CONNECTION_LIMIT, value: config.maxConnections, ptr_value: nil),
                    MHD_OptionItem(option: .PER_IP_CONNECTION_LIMIT, value: config.maxConnectionsPerIP, ptr_value: nil),
                    MHD_OptionItem(option: .CONNECTION_TIMEOUT, value: config.connectionTimeoutSeconds, ptr_value: nil),
                    MHD_OptionItem(option: .CONNECTION_MEMORY_LIMIT, value: config.connectionMemoryBytes, ptr_value: nil),
                    MHD_OptionItem(option: .SOCK_ADDR, value: 0,
                                   ptr_value: isIPv6 ? UnsafeMutableRawPointer(v6) : UnsafeMutableRawPointer(v4)),
                    MHD_OptionItem(option: .NOTIFY_COMPLETED, value: unsafeBitCast(completed, to: Int.self),
                                   ptr_value: Unmanaged.passUnretained(server).toOpaque()),
                ]
                if config.threads > 1 {
                    options.append(MHD_OptionItem(option: .THREAD_POOL_SIZE, value: config.threads, ptr_value: nil))
                }
                options.append(MHD_OptionItem(option: .END, value: 0, ptr_value: nil))
                return emupanel_mhd_start(flags, config.port, accessHandler,
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
struct ConnectionHandle: SuspendableConnection, @unchecked Sendable { // MHD allows resume from any thread; suspend is only called from MHD's callbacks
    let pointer: OpaquePointer
    func suspend() { MHD_suspend_connection(pointer) }
    func resume() { MHD_resume_connection(pointer) }
}

/// One request's state across libmicrohttpd's calls to the access handler.
final class RequestContext: @unchecked Sendable { // body fields are touched only by the daemon thread owning the connection; `parking` is locked
    var body: [UInt8] = []
    var answered = false
    var tooLarge = false
    var discarded = 0
    /// How much of an oversized body is read and dropped to answer 413 cleanly.
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
        guard let pointer = slot.pointee, pointer != headersSeen else { return nil }
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

/// `*con_cls` of a request that has needed no state of its own so far: headers seen, no body,
/// nothing parked. Most requests are answered on the next call and never allocate a context;
/// one is made on demand (body bytes, a deferred or streamed response, 413). Only compared, never
/// dereferenced; address 1 can be no object's, so it never collides with a context.
private var headersSeen: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: 1)! }

private let accessHandler: MHD_AccessHandlerCallback = { cls, connection, url, method, _, uploadData, uploadSize, contextSlot in
    guard let cls, let connection, let contextSlot, let uploadSize else { return MHD_Result.NO }
    // The server outlives its daemon; borrowing it skips a retain and release per call on a
    // counter that both daemon threads would otherwise contend for.
    return Unmanaged<HTTPServer>.fromOpaque(cls)._withUnsafeGuaranteedRef { server in
        handle(connection: connection, url: url, method: method, uploadData: uploadData,
               uploadSize: uploadSize, slot: contextSlot, server: server)
    }
}

private func handle(connection: OpaquePointer, url: UnsafePointer<CChar>?, method: UnsafePointer<CChar>?,
                    uploadData: UnsafePointer<CChar>?, uploadSize: UnsafeMutablePointer<Int>,
                    slot contextSlot: UnsafeMutablePointer<UnsafeMutableRawPointer?>, server: HTTPServer) -> MHD_Result {
    guard let existing = contextSlot.pointee else {
        // First call: headers only. Answering now would make MHD 0.9.75 close the connection
        // after the response, so only refuse here what must not be read: bodies announced too
        // large, and bodies for protected routes sent without any credentials.
        let length = MHD_lookup_connection_value(connection, MHD_ValueKind.HEADER_KIND, "Content-Length")
            .flatMap { Int(String(cString: $0)) }
        var refusal: Response?
        if let length, length > server.configuration.maxBodyBytes {
            refusal = tooLarge(server)
        } else if (length ?? 0) > 0 || MHD_lookup_connection_value(connection, MHD_ValueKind.HEADER_KIND, "Transfer-Encoding") != nil,
                  let method = method.flatMap(HTTPMethod.init(cString:)) {
            let path = url.map { String(cString: $0) } ?? "/"
            refusal = server.router.refusalBeforeBody(method: method, path: path) {
                buildRequest(connection: connection, method: method, path: path, body: [])
            }?.response
        }
        if let refusal {
            let context = RequestContext.make(in: contextSlot)
            context.answered = true
            return queue(refusal, on: connection, slot: contextSlot, server: server)
        }
        contextSlot.pointee = headersSeen
        return MHD_Result.YES
    }

    if existing == headersSeen {
        if uploadSize.pointee == 0 {
            // The whole request is in: no body arrived, so no context was needed.
            return answer(connection: connection, method: method, url: url, body: [], slot: contextSlot, server: server)
        }
        RequestContext.make(in: contextSlot)
    }
    let context = Unmanaged<RequestContext>.fromOpaque(contextSlot.pointee!).takeUnretainedValue()

    if uploadSize.pointee > 0 {
        let count = uploadSize.pointee
        uploadSize.pointee = 0
        if context.answered { return MHD_Result.YES }
        if context.tooLarge || context.body.count + count > server.configuration.maxBodyBytes {
            // libmicrohttpd only queues a response before or after the body, so an oversized
            // chunked body is read and dropped, then refused; past the drain cap the connection is cut.
            context.tooLarge = true
            context.body = []
            context.discarded += count
            return context.discarded > RequestContext.drainCap ? MHD_Result.NO : MHD_Result.YES
        }
        if let uploadData {
            context.body.append(contentsOf: UnsafeRawBufferPointer(start: uploadData, count: count))
        }
        return MHD_Result.YES
    }
    if context.tooLarge {
        context.tooLarge = false
        return queue(tooLarge(server), on: connection, slot: contextSlot, server: server)
    }
    if let ready = context.takeReady() {
        server.parked.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(context)) }
        return queue(ready, on: connection, slot: contextSlot, server: server)
    }
    if context.answered { return MHD_Result.YES }
    context.answered = true
    let body = context.body
    context.body = []
    return answer(connection: connection, method: method, url: url, body: body, slot: contextSlot, server: server)
}

/// Routes a complete request and queues (or parks) its response.
private func answer(connection: OpaquePointer, method: UnsafePointer<CChar>?, url: UnsafePointer<CChar>?,
                    body: [UInt8], slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>, server: HTTPServer) -> MHD_Result {
    guard let method = method.flatMap(HTTPMethod.init(cString:)) else {
        // Not a method any route could have (TRACE, CONNECT, made-up ones): 501, not 405,
        // which would have to list the allowed methods (RFC 9110 §15.6.2).
        let name = method.map { String(cString: $0) } ?? ""
        return queue(HTTPError(.notImplemented, code: "not_implemented",
                               message: "the server does not implement the \(name) method").response,
                     on: connection, slot: slot, server: server)
    }
    if server.stopping.load(ordering: .relaxed) {
        return queue(shuttingDown, on: connection, slot: slot, server: server)
    }
    let request = buildRequest(connection: connection, method: method,
                               path: url.map { String(cString: $0) } ?? "/", body: body)
    let path = server.logsRequests ? request.path : ""
    let response = server.router.respond(to: request)
    if server.logsRequests {
        server.logger.debug("\(method.rawValue) \(path) \(response.status.rawValue)")
    }
    return queue(response, on: connection, slot: slot, server: server)
}

private let requestCompleted: MHD_RequestCompletedCallback = { cls, _, contextSlot, _ in
    guard let cls, let contextSlot, let pointer = contextSlot.pointee else { return }
    contextSlot.pointee = nil
    if pointer == headersSeen { return }
    let context = Unmanaged<RequestContext>.fromOpaque(pointer).takeRetainedValue()
    context.finish()
    // A parked request whose client left ends here without taking its response: unlist it,
    // or `stop()` would wait for it.
    Unmanaged<HTTPServer>.fromOpaque(cls)._withUnsafeGuaranteedRef { server in
        _ = server.parked.withLock { $0.removeValue(forKey: ObjectIdentifier(context)) }
    }
    context.stream?.detach()
    context.stream = nil
}

/// The answer to requests caught by `stop()`.
var shuttingDown: Response {
    HTTPError(.serviceUnavailable, code: "shutting_down", message: "the server is stopping").response
}

private func tooLarge(_ server: HTTPServer) -> Response {
    HTTPError(.payloadTooLarge, code: "payload_too_large",
              message: "request body exceeds \(server.configuration.maxBodyBytes) bytes").response
}

/// Hands a response to libmicrohttpd, or parks the connection for a deferred one.
/// Only deferred and streamed responses need a context; the slot gets one if it has none.
private func queue(_ response: Response, on connection: OpaquePointer,
                   slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>, server: HTTPServer) -> MHD_Result {
    let mhdResponse: OpaquePointer?
    switch response.body {
    case .bytes(let bytes):
        mhdResponse = bytes.withUnsafeBytes { buffer in
            MHD_create_response_from_buffer(buffer.count, UnsafeMutableRawPointer(mutating: buffer.baseAddress),
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
        _ = MHD_add_response_header(mhdResponse, name, value)
    }
    let result = MHD_queue_response(connection, UInt32(response.status.rawValue), mhdResponse)
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
    return Request(method: method, path: path, query: values.query, headers: values.headers,
                   cookies: values.cookies, body: body)
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
