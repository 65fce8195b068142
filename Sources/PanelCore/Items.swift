/// The API's list shape (SPEC §5): `{"items": […]}`.
public struct Items<T: Encodable>: Encodable {
    public var items: [T]
    public init(items: [T]) { self.items = items }
}

extension Items: Sendable where T: Sendable {}
