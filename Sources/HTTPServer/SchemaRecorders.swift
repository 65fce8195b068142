import Foundation

// Learning a Codable type's JSON shape from the type itself: an Encoder that records what an
// example value encodes, and a Decoder that records what `init(from:)` asks for (a field read
// with `decode` is required, one read with `decodeIfPresent` optional). No reflection, no
// second description to keep in step.

/// A node of the shape being recorded; containers share it by reference.
private final class SchemaNode {
    enum Shape {
        case unknown
        case single(JSONSchema)
        case keyed([JSONSchema.Property], required: [String])
        case unkeyed(JSONSchema?)
    }

    var shape = Shape.unknown

    var schema: JSONSchema {
        switch shape {
        case .unknown: .any
        case .single(let schema): schema
        case .keyed(let properties, let required): .object(properties: properties, required: required)
        case .unkeyed(let element): .array(of: element ?? .any)
        }
    }

    func add(_ name: String, _ schema: JSONSchema, required: Bool) {
        guard case .keyed(var properties, var requiredKeys) = shape else {
            shape = .keyed([.init(name, schema)], required: required ? [name] : [])
            return
        }
        if let index = properties.firstIndex(where: { $0.name == name }) {
            properties[index].schema = schema
        } else {
            properties.append(.init(name, schema))
        }
        if required, !requiredKeys.contains(name) { requiredKeys.append(name) }
        shape = .keyed(properties, required: requiredKeys)
    }

    func ensureKeyed() {
        if case .unknown = shape { shape = .keyed([], required: []) }
    }
}

/// What a type says about itself before anything is inspected.
private func declaredSchema(of type: Any.Type) -> JSONSchema? {
    if let described = type as? any SchemaDescribed.Type { return described.jsonSchema }
    if type == Date.self { return .string(format: "date-time") }
    if let enumerable = type as? any SchemaEnumerable.Type { return .string(cases: enumerable.schemaCases) }
    return nil
}

private func primitiveSchema(of type: Any.Type) -> JSONSchema? {
    switch type {
    case is Bool.Type: .boolean
    case is String.Type: .string
    case is Double.Type, is Float.Type: .number
    case is Int.Type, is Int8.Type, is Int16.Type, is Int32.Type, is Int64.Type,
        is UInt.Type, is UInt8.Type, is UInt16.Type, is UInt32.Type, is UInt64.Type:
        .integer
    default: nil
    }
}

/// An optional written with `encode` rather than `encodeIfPresent`: its key is always there,
/// and may hold null.
private protocol OptionalValue {
    var wrappedSchema: JSONSchema { get }
}

extension Optional: OptionalValue where Wrapped: Encodable {
    fileprivate var wrappedSchema: JSONSchema { map { SchemaEncoder.schema(of: $0) } ?? .any }
}

/// A dictionary encodes as an object whose keys are data, not fields.
private protocol StringKeyedValues {
    var valueSchema: JSONSchema { get }
}

extension Dictionary: StringKeyedValues where Key == String, Value: Encodable {
    fileprivate var valueSchema: JSONSchema { values.first.map { SchemaEncoder.schema(of: $0) } ?? .any }
}

// MARK: - Encoding an example

public enum SchemaEncoder {
    /// The shape `value` encodes to; optional fields it leaves out are absent from the schema.
    public static func schema<T: Encodable>(of value: T) -> JSONSchema {
        if let optional = value as? any OptionalValue { return .nullable(optional.wrappedSchema) }
        if let dictionary = value as? any StringKeyedValues { return .map(of: dictionary.valueSchema) }
        if let declared = declaredSchema(of: T.self) { return declared }
        if let primitive = primitiveSchema(of: T.self) { return primitive }
        let node = SchemaNode()
        do {
            try value.encode(to: Recorder(node: node))
        } catch {
            return .any
        }
        return node.schema
    }

    private struct Recorder: Encoder {
        let node: SchemaNode
        var codingPath: [any CodingKey] = []
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            node.ensureKeyed()
            return KeyedEncodingContainer(Keyed<Key>(node: node))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer { Unkeyed(node: node) }

        func singleValueContainer() -> any SingleValueEncodingContainer { Single(node: node) }
    }

    private struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let node: SchemaNode
        var codingPath: [any CodingKey] = []

        mutating func encodeNil(forKey key: Key) throws { node.add(key.stringValue, .nullable(.any), required: true) }

        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            node.add(key.stringValue, SchemaEncoder.schema(of: value), required: true)
        }

        // Synthesized Encodable writes optionals with these: the key may be absent.
        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
            node.add(key.stringValue, value.map { SchemaEncoder.schema(of: $0) } ?? .any, required: false)
        }
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { try optional(value, key) }
        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { try optional(value, key) }
        mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { try optional(value, key) }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { try optional(value, key) }
        mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { try optional(value, key) }
        mutating func encodeIfPresent(_ value: UInt64?, forKey key: Key) throws { try optional(value, key) }

        private mutating func optional<T: Encodable>(_ value: T?, _ key: Key) throws {
            node.add(key.stringValue, primitiveSchema(of: T.self) ?? .any, required: false)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            let child = SchemaNode()
            child.ensureKeyed()
            defer { node.add(key.stringValue, child.schema, required: true) }
            return KeyedEncodingContainer(Keyed<NestedKey>(node: child))
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            let child = SchemaNode()
            child.shape = .unkeyed(nil)
            defer { node.add(key.stringValue, child.schema, required: true) }
            return Unkeyed(node: child)
        }

        mutating func superEncoder() -> any Encoder { Recorder(node: node) }
        mutating func superEncoder(forKey key: Key) -> any Encoder { Recorder(node: node) }
    }

    private struct Unkeyed: UnkeyedEncodingContainer {
        let node: SchemaNode
        var codingPath: [any CodingKey] = []
        var count = 0

        init(node: SchemaNode) {
            self.node = node
            if case .unknown = node.shape { node.shape = .unkeyed(nil) }
        }

        private mutating func record(_ schema: JSONSchema) {
            count += 1
            if case .unkeyed(nil) = node.shape { node.shape = .unkeyed(schema) }
        }

        mutating func encodeNil() throws { record(.nullable(.any)) }
        mutating func encode<T: Encodable>(_ value: T) throws { record(SchemaEncoder.schema(of: value)) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            let child = SchemaNode()
            child.ensureKeyed()
            record(.any)
            if case .unkeyed = node.shape { node.shape = .unkeyed(nil) }
            return KeyedEncodingContainer(Keyed<NestedKey>(node: child))
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { Unkeyed(node: SchemaNode()) }
        mutating func superEncoder() -> any Encoder { Recorder(node: SchemaNode()) }
    }

    private struct Single: SingleValueEncodingContainer {
        let node: SchemaNode
        var codingPath: [any CodingKey] = []
        mutating func encodeNil() throws { node.shape = .single(.nullable(.any)) }
        mutating func encode<T: Encodable>(_ value: T) throws { node.shape = .single(SchemaEncoder.schema(of: value)) }
    }
}

// MARK: - Decoding from a recorder

public enum SchemaDecoder {
    /// The shape `init(from:)` reads: what it decodes, with `decodeIfPresent` fields optional.
    public static func schema<T: Decodable>(of type: T.Type) -> JSONSchema {
        if let declared = declaredSchema(of: T.self) { return declared }
        if let primitive = primitiveSchema(of: T.self) { return primitive }
        let node = SchemaNode()
        do {
            _ = try T(from: Recorder(node: node, placeholderString: nil))
        } catch {
            return node.shape.isUnknown ? .any : node.schema
        }
        return node.schema
    }

    /// A value to hand back for a field of type `T`, and its shape.
    fileprivate static func placeholder<T: Decodable>(_ type: T.Type) throws -> (T, JSONSchema) {
        let node = SchemaNode()
        // A string enum must get one of its own cases back, or its init fails.
        let string = (T.self as? any SchemaEnumerable.Type)?.schemaCases.first
        let value = try T(from: Recorder(node: node, placeholderString: string))
        return (value, declaredSchema(of: T.self) ?? primitiveSchema(of: T.self) ?? node.schema)
    }

    private struct Recorder: Decoder {
        let node: SchemaNode
        let placeholderString: String?
        var codingPath: [any CodingKey] = []
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            node.ensureKeyed()
            return KeyedDecodingContainer(Keyed<Key>(node: node))
        }

        func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
            if case .unknown = node.shape { node.shape = .unkeyed(nil) }
            return Unkeyed(node: node)
        }

        func singleValueContainer() throws -> any SingleValueDecodingContainer {
            Single(node: node, placeholderString: placeholderString)
        }
    }

    private struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let node: SchemaNode
        var codingPath: [any CodingKey] = []
        var allKeys: [Key] { [] }

        func contains(_ key: Key) -> Bool { true }
        func decodeNil(forKey key: Key) throws -> Bool { false }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            let (value, schema) = try SchemaDecoder.placeholder(T.self)
            node.add(key.stringValue, schema, required: true)
            return value
        }

        // Synthesized Decodable reads optionals with these: the field may be left out.
        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
            let (value, schema) = try SchemaDecoder.placeholder(T.self)
            node.add(key.stringValue, schema, required: false)
            return value
        }
        func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { optional(.string, "", key) }
        func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { optional(.boolean, false, key) }
        func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { optional(.number, 0, key) }
        func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { optional(.integer, 0, key) }
        func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { optional(.integer, 0, key) }
        func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { optional(.integer, 0, key) }

        private func optional<T>(_ schema: JSONSchema, _ value: T, _ key: Key) -> T? {
            node.add(key.stringValue, schema, required: false)
            return value
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            let child = SchemaNode()
            child.ensureKeyed()
            defer { node.add(key.stringValue, child.schema, required: true) }
            return KeyedDecodingContainer(Keyed<NestedKey>(node: child))
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            let child = SchemaNode()
            child.shape = .unkeyed(nil)
            defer { node.add(key.stringValue, child.schema, required: true) }
            return Unkeyed(node: child)
        }

        func superDecoder() throws -> any Decoder { Recorder(node: node, placeholderString: nil) }
        func superDecoder(forKey key: Key) throws -> any Decoder { Recorder(node: node, placeholderString: nil) }
    }

    /// Offers one element: enough to learn its shape.
    private struct Unkeyed: UnkeyedDecodingContainer {
        let node: SchemaNode
        var codingPath: [any CodingKey] = []
        var count: Int? { 1 }
        var currentIndex = 0
        var isAtEnd: Bool { currentIndex > 0 }

        mutating func decodeNil() throws -> Bool { false }

        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            currentIndex += 1
            let (value, schema) = try SchemaDecoder.placeholder(T.self)
            node.shape = .unkeyed(schema)
            return value
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            currentIndex += 1
            let child = SchemaNode()
            child.ensureKeyed()
            node.shape = .unkeyed(nil)
            return KeyedDecodingContainer(Keyed<NestedKey>(node: child))
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            currentIndex += 1
            return Unkeyed(node: SchemaNode())
        }

        mutating func superDecoder() throws -> any Decoder { Recorder(node: SchemaNode(), placeholderString: nil) }
    }

    private struct Single: SingleValueDecodingContainer {
        let node: SchemaNode
        let placeholderString: String?
        var codingPath: [any CodingKey] = []

        func decodeNil() -> Bool { false }

        func decode(_ type: String.Type) throws -> String {
            record(.string)
            return placeholderString ?? ""
        }

        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            let (value, schema) = try SchemaDecoder.placeholder(T.self)
            record(schema)
            return value
        }

        func decode(_ type: Bool.Type) throws -> Bool { record(.boolean); return false }
        func decode(_ type: Double.Type) throws -> Double { record(.number); return 0 }
        func decode(_ type: Int.Type) throws -> Int { record(.integer); return 0 }
        func decode(_ type: Int64.Type) throws -> Int64 { record(.integer); return 0 }
        func decode(_ type: UInt64.Type) throws -> UInt64 { record(.integer); return 0 }

        private func record(_ schema: JSONSchema) {
            if case .unknown = node.shape { node.shape = .single(schema) }
        }
    }
}

extension SchemaNode.Shape {
    fileprivate var isUnknown: Bool { if case .unknown = self { true } else { false } }
}
