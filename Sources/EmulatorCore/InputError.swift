// The one-line error of the command-line tools for input they cannot use: an
// unreadable file, bytes that are not a QEVM stream, text that is not a dump.

/// A problem with the input itself (unreadable, not a stream, not a dump), as one line.
public struct InputError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
