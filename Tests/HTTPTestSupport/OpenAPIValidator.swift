import Foundation

/// Checks answers against a served OpenAPI document: the status must be one the operation lists
/// (or an error, in the error shape), and the body must match that answer's schema. The tests
/// that talk to a panel pass every answer through it, so the document is proven on real traffic.
public final class OpenAPIValidator: @unchecked Sendable {  // immutable after init
    private let paths: [(template: [Substring], operations: [String: Any])]
    private let schemas: [String: Any]

    public init(document: [String: Any]) {
        let pathTable = document["paths"] as? [String: [String: Any]] ?? [:]
        paths = pathTable.map { (template: $0.key.split(separator: "/"), operations: $0.value) }
        schemas = (document["components"] as? [String: Any])?["schemas"] as? [String: Any] ?? [:]
    }

    /// What is wrong with this answer, one line each; nothing when it matches the document.
    public func problems(method: String, path: String, status: Int, contentType: String?, body: [UInt8]) -> [String] {
        let route = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        guard route.hasPrefix("/api/") else { return [] }
        let what = "\(method) \(route) → \(status)"
        guard let operation = operation(method: method.lowercased(), path: route) else {
            // Unknown routes answer the error shape (404, 405) like any other error.
            return status >= 400 ? check(body, against: ["$ref": "#/components/schemas/Error"], what) : ["\(what): no such operation in the document"]
        }
        let responses = operation["responses"] as? [String: Any] ?? [:]
        if status >= 400 {
            return check(body, against: ["$ref": "#/components/schemas/Error"], what)
        }
        guard let response = responses[String(status)] as? [String: Any] else {
            return ["\(what): the document does not list this status (it lists \(responses.keys.sorted().joined(separator: ", ")))"]
        }
        guard let content = response["content"] as? [String: Any] else {
            return body.isEmpty ? [] : ["\(what): the document promises no body, got \(body.count) bytes"]
        }
        if content["text/event-stream"] != nil { return [] }
        guard let schema = (content["application/json"] as? [String: Any])?["schema"] as? [String: Any] else { return [] }
        if let contentType, !contentType.hasPrefix("application/json") {
            return ["\(what): Content-Type \(contentType), the document says application/json"]
        }
        return check(body, against: schema, what)
    }

    private func operation(method: String, path: String) -> [String: Any]? {
        let segments = path.split(separator: "/")
        for entry in paths where entry.template.count == segments.count {
            let matches = zip(entry.template, segments).allSatisfy { template, segment in
                template.hasPrefix("{") || template == segment
            }
            if matches, let operation = entry.operations[method] as? [String: Any] { return operation }
        }
        return nil
    }

    private func check(_ body: [UInt8], against schema: [String: Any], _ what: String) -> [String] {
        guard let value = try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) else {
            return ["\(what): the body is not JSON: \(String(decoding: body.prefix(200), as: UTF8.self))"]
        }
        return validate(value, schema, "\(what) $")
    }

    private func validate(_ value: Any, _ schema: [String: Any], _ path: String) -> [String] {
        if let reference = schema["$ref"] as? String {
            let name = reference.components(separatedBy: "/").last ?? ""
            guard let target = schemas[name] as? [String: Any] else { return ["\(path): unresolved \(reference)"] }
            return validate(value, target, path)
        }
        if let options = schema["oneOf"] as? [[String: Any]] {
            return options.contains { validate(value, $0, path).isEmpty } ? [] : ["\(path): matches none of its oneOf"]
        }
        guard let type = schema["type"] as? String else { return [] }
        let isBoolean = (value as? NSNumber).map { String(cString: $0.objCType) == "c" } ?? false
        switch type {
        case "null":
            return value is NSNull ? [] : ["\(path): expected null"]
        case "boolean":
            return isBoolean ? [] : ["\(path): expected a boolean, got \(value)"]
        case "integer":
            guard let number = value as? NSNumber, !isBoolean, number.doubleValue.rounded() == number.doubleValue else {
                return ["\(path): expected an integer, got \(value)"]
            }
            return []
        case "number":
            return value is NSNumber && !isBoolean ? [] : ["\(path): expected a number, got \(value)"]
        case "string":
            guard let text = value as? String else { return ["\(path): expected a string, got \(value)"] }
            if let cases = schema["enum"] as? [String], !cases.contains(text) {
                return ["\(path): '\(text)' is not one of \(cases.joined(separator: ", "))"]
            }
            return []
        case "array":
            guard let array = value as? [Any] else { return ["\(path): expected an array, got \(value)"] }
            guard let items = schema["items"] as? [String: Any] else { return [] }
            return array.enumerated().flatMap { validate($1, items, "\(path)[\($0)]") }
        case "object":
            guard let object = value as? [String: Any] else { return ["\(path): expected an object, got \(value)"] }
            var problems = (schema["required"] as? [String] ?? []).filter { object[$0] == nil }.map { "\(path): missing '\($0)'" }
            let properties = schema["properties"] as? [String: Any] ?? [:]
            let additional = schema["additionalProperties"] as? [String: Any]
            for (key, field) in object.sorted(by: { $0.key < $1.key }) {
                if let propertySchema = properties[key] as? [String: Any] {
                    problems += validate(field, propertySchema, "\(path).\(key)")
                } else if let additional {
                    problems += validate(field, additional, "\(path).\(key)")
                }
            }
            return problems
        default:
            return []
        }
    }
}
