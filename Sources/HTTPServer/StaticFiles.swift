import Foundation

/// Serves files below one directory: MIME types, ETag / If-None-Match, Cache-Control,
/// `index.html` for directories, and nothing outside the root — `..` segments are refused
/// after percent-decoding (libmicrohttpd decodes `%2e%2e%2f` before we see the path), and
/// symlinks that leave the root are refused after resolving. Dot files and dot directories
/// (`.git`, `.env`, editor swap files) are never served, however the path reaches them.
public struct StaticFiles: Sendable {
    public let root: String
    /// URL prefix this directory is mounted at (`/` for Public/).
    public let mountPoint: String
    public let cacheControl: String

    public init(root: String, mountPoint: String = "/", cacheControl: String = "no-cache") {
        self.root = URL(fileURLWithPath: root).standardizedFileURL.resolvingSymlinksInPath().path
        self.mountPoint = mountPoint.hasSuffix("/") ? mountPoint : mountPoint + "/"
        self.cacheControl = cacheControl
    }

    /// The response for `request`, or nil when the path is not below this mount point.
    public func respond(to request: Request) throws -> Response? {
        guard request.method == .GET || request.method == .HEAD else {
            throw HTTPError(
                .methodNotAllowed, code: "method_not_allowed", message: "static files answer GET and HEAD",
                headers: [("Allow", "GET, HEAD")])
        }
        guard request.path.hasPrefix(mountPoint) || request.path + "/" == mountPoint else { return nil }
        let relative = String(request.path.dropFirst(min(mountPoint.count, request.path.count)))
        let segments = relative.split(separator: "/", omittingEmptySubsequences: true)
        for segment in segments where segment == ".." || segment == "." || segment.contains("\\") || segment.contains("\0") {
            throw HTTPError(.badRequest, code: "bad_path", message: "path segments '.' and '..' are not allowed")
        }
        // Hidden is not found: a 404 says nothing about whether such a file exists.
        if segments.contains(where: { $0.hasPrefix(".") }) { throw HTTPError.notFound("no file at \(request.path)") }
        var path = segments.isEmpty ? root : root + "/" + segments.joined(separator: "/")
        var info = stat()
        guard stat(path, &info) == 0 else { throw HTTPError.notFound("no file at \(request.path)") }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            path += "/index.html"
            guard stat(path, &info) == 0 else { throw HTTPError.notFound("no file at \(request.path)") }
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw HTTPError.notFound("no file at \(request.path)") }
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard resolved.hasPrefix(root + "/"),
            !resolved.dropFirst(root.count).split(separator: "/").contains(where: { $0.hasPrefix(".") })
        else {
            throw HTTPError.notFound("no file at \(request.path)")
        }

        let etag =
            "\"\(String(UInt64(info.st_size), radix: 16))-\(String(UInt64(info.st_mtim.tv_sec), radix: 16))-\(String(UInt64(info.st_mtim.tv_nsec), radix: 16))\""
        var headers = HTTPHeaders()
        headers.add("ETag", etag)
        headers.add("Cache-Control", cacheControl)
        if let match = request.headers["If-None-Match"],
            match.split(separator: ",").contains(where: {
                $0.trimmingCharacters(in: .whitespaces) == etag || $0.trimmingCharacters(in: .whitespaces) == "*"
            })
        {
            return Response(status: .notModified, headers: headers)
        }
        headers.add("Content-Type", Self.mimeType(forPath: resolved))
        let descriptor = open(resolved, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw HTTPError.notFound("no file at \(request.path)") }
        return Response(status: .ok, headers: headers, body: .file(FileBody(descriptor: descriptor, size: UInt64(info.st_size))))
    }

    static let mimeTypes: [String: String] = [
        "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8",
        "js": "text/javascript; charset=utf-8", "mjs": "text/javascript; charset=utf-8",
        "css": "text/css; charset=utf-8", "json": "application/json", "map": "application/json",
        "svg": "image/svg+xml", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
        "gif": "image/gif", "ico": "image/x-icon", "webp": "image/webp", "txt": "text/plain; charset=utf-8",
        "woff": "font/woff", "woff2": "font/woff2", "wasm": "application/wasm",
    ]

    public static func mimeType(forPath path: String) -> String {
        let ext = (path as NSString).pathExtension.lowercased()
        return mimeTypes[ext] ?? "application/octet-stream"
    }
}
