import Foundation

/// Headers every response carries (issue 11 item 18), added where responses are handed to
/// libmicrohttpd so none can miss them: errors, redirects, files, streams, 304s.
///
/// - `nosniff`: a JSON answer or an uploaded name is never run as script or style.
/// - No framing (`frame-ancestors 'none'`, and `X-Frame-Options` for browsers without CSP 2):
///   the panel's buttons cannot be clicked through another site's page.
/// - `Referrer-Policy: no-referrer`: URLs (with guest ids) do not leak to other sites.
/// - Pages get a policy that allows only the server's own script, style, images and
///   connections — no inline script or style, no eval, no plugins, no `<base>`. The UI is
///   written for it: modules loaded by URL, elements built with the DOM, styles in style.css.
/// - API answers get the tightest policy (they are data, never a document) and `no-store`:
///   they carry guest state and CSRF tokens that must not stay in caches.
enum SecurityHeaders {
    /// A header as C strings, made once: libmicrohttpd copies them into each response.
    struct Header: @unchecked Sendable {  // both pointers come from strdup at first use and are never freed or written
        let name: UnsafePointer<CChar>
        let value: UnsafePointer<CChar>
        init(_ name: String, _ value: String) {
            self.name = UnsafePointer(strdup(name)!)
            self.value = UnsafePointer(strdup(value)!)
        }
    }

    static let pagePolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        + "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    static let apiPolicy = "default-src 'none'; frame-ancestors 'none'"

    private static let common = [
        Header("X-Content-Type-Options", "nosniff"),
        Header("X-Frame-Options", "DENY"),
        Header("Referrer-Policy", "no-referrer"),
    ]

    /// For everything under the API prefix.
    static let api = common + [Header("Content-Security-Policy", apiPolicy), Header("Cache-Control", "no-store")]

    /// For the web UI's files and anything else.
    static let page = common + [Header("Content-Security-Policy", pagePolicy)]
}
