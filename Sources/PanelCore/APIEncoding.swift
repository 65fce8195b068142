import Foundation

/// The JSON encoder settings of every API response (HTTPServer's `Response.json`), for
/// output made outside a request that must read the same: `emupanel machines --json`.
public enum APIEncoding {
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }
}
