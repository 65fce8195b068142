import Foundation

/// The shape of a JSON value, as the JSON Schema subset OpenAPI 3.1 documents use: what a route
/// takes and answers. Schemas are derived from the Codable types themselves (`SchemaDecoder`,
/// `SchemaEncoder`), so the document cannot drift from what is served; `validate` checks a
/// value against one.
public indirect enum JSONSchema: Sendable, Equatable {
    /// Anything (free-form documents, task details).
    case any
    case boolean
    case integer
    case number
    /// With `cases`, one of those strings; with `format`, e.g. `date-time`.
    case string(cases: [String]? = nil, format: String? = nil)
    case array(of: JSONSchema)
    /// Keys in declaration order; `required` lists those always present.
    case object(properties: [Property], required: [String])
    /// An object of any keys whose values share a shape (a Swift dictionary).
    case map(of: JSONSchema)
    /// The value or `null`.
    case nullable(JSONSchema)

    public struct Property: Sendable, Equatable {
        public var name: String
        public var schema: JSONSchema
        public init(_ name: String, _ schema: JSONSchema) {
            self.name = name
            self.schema = schema
        }
    }

    public static let string = JSONSchema.string()

    /// The schema of a type that decodes from JSON, learned by decoding it from a recorder.
    public static func decodable<T: Decodable>(_ type: T.Type) -> JSONSchema {
        SchemaDecoder.schema(of: type)
    }

    /// The schema of a type that encodes to JSON, learned by encoding its example.
    public static func encodable<T: APIExample>(_ type: T.Type) -> JSONSchema {
        SchemaEncoder.schema(of: T.example)
    }
}

/// A representative value of a response type, whose encoding shows its shape: every optional
/// field set, so the schema knows each field's type.
public protocol APIExample: Encodable {
    static var example: Self { get }
}

/// A type that states its schema itself rather than being inspected (free-form JSON, a value
/// with a custom encoding).
public protocol SchemaDescribed {
    static var jsonSchema: JSONSchema { get }
}

/// String enums list their cases in the schema.
public protocol SchemaEnumerable {
    static var schemaCases: [String] { get }
}

extension SchemaEnumerable where Self: CaseIterable & RawRepresentable, RawValue == String {
    public static var schemaCases: [String] { allCases.map(\.rawValue) }
}

// MARK: - Rendering

extension JSONSchema: Encodable {
    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        switch self {
        case .any:
            break
        case .boolean, .integer, .number:
            try container.encode(typeName, forKey: Key("type"))
        case .string(let cases, let format):
            try container.encode("string", forKey: Key("type"))
            if let cases { try container.encode(cases, forKey: Key("enum")) }
            if let format { try container.encode(format, forKey: Key("format")) }
        case .array(let element):
            try container.encode("array", forKey: Key("type"))
            try container.encode(element, forKey: Key("items"))
        case .object(let properties, let required):
            try container.encode("object", forKey: Key("type"))
            var nested = container.nestedContainer(keyedBy: Key.self, forKey: Key("properties"))
            for property in properties { try nested.encode(property.schema, forKey: Key(property.name)) }
            if !required.isEmpty { try container.encode(required, forKey: Key("required")) }
        case .map(let value):
            try container.encode("object", forKey: Key("type"))
            try container.encode(value, forKey: Key("additionalProperties"))
        case .nullable(let inner):
            var options = container.nestedUnkeyedContainer(forKey: Key("oneOf"))
            try options.encode(JSONSchema.null)
            try options.encode(inner)
        }
    }

    /// `{"type": "null"}`, only inside `nullable`.
    private struct NullSchema: Encodable {
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode("null", forKey: Key("type"))
        }
    }

    private static var null: NullSchema { NullSchema() }

    var typeName: String {
        switch self {
        case .any: "any"
        case .boolean: "boolean"
        case .integer: "integer"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object, .map: "object"
        case .nullable(let inner): inner.typeName + "?"
        }
    }
}

// MARK: - Validation

extension JSONSchema {
    /// What is wrong with `value` (as `JSONSerialization` reads it), one line each, or nothing.
    /// Objects may carry keys the schema does not list: clients must ignore what they do not know.
    public func validate(_ value: Any?, at path: String = "$") -> [String] {
        if case .nullable(let inner) = self {
            return value == nil || value is NSNull ? [] : inner.validate(value, at: path)
        }
        guard let value, !(value is NSNull) else {
            return self == .any ? [] : ["\(path): null where \(typeName) is expected"]
        }
        switch self {
        case .any, .nullable:
            return []
        case .boolean:
            return Self.isBoolean(value) ? [] : ["\(path): expected a boolean, got \(Self.describe(value))"]
        case .integer:
            guard let number = value as? NSNumber, !Self.isBoolean(value), number.doubleValue.rounded() == number.doubleValue else {
                return ["\(path): expected an integer, got \(Self.describe(value))"]
            }
            return []
        case .number:
            return value is NSNumber && !Self.isBoolean(value) ? [] : ["\(path): expected a number, got \(Self.describe(value))"]
        case .string(let cases, _):
            guard let text = value as? String else { return ["\(path): expected a string, got \(Self.describe(value))"] }
            if let cases, !cases.contains(text) { return ["\(path): '\(text)' is not one of \(cases.joined(separator: ", "))"] }
            return []
        case .array(let element):
            guard let array = value as? [Any] else { return ["\(path): expected an array, got \(Self.describe(value))"] }
            return array.enumerated().flatMap { element.validate($1, at: "\(path)[\($0)]") }
        case .object(let properties, let required):
            guard let object = value as? [String: Any] else { return ["\(path): expected an object, got \(Self.describe(value))"] }
            var problems = required.filter { object[$0] == nil }.map { "\(path): missing '\($0)'" }
            for property in properties {
                if let field = object[property.name] { problems += property.schema.validate(field, at: "\(path).\(property.name)") }
            }
            return problems
        case .map(let valueSchema):
            guard let object = value as? [String: Any] else { return ["\(path): expected an object, got \(Self.describe(value))"] }
            return object.sorted { $0.key < $1.key }.flatMap { valueSchema.validate($0.value, at: "\(path).\($0.key)") }
        }
    }

    /// JSONSerialization reads `true`/`false` as NSNumbers of C type `char`, and nothing else as that.
    private static func isBoolean(_ value: Any) -> Bool {
        guard let number = value as? NSNumber else { return false }
        return String(cString: number.objCType) == "c"
    }

    private static func describe(_ value: Any) -> String {
        switch value {
        case is String: "a string"
        case is [Any]: "an array"
        case is [String: Any]: "an object"
        case _ where isBoolean(value): "a boolean"
        case is NSNumber: "a number"
        default: "\(type(of: value))"
        }
    }
}
