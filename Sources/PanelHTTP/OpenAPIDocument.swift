import Foundation
import HTTPServer
import PanelCore
import Synchronization

/// `GET /openapi.json`: an OpenAPI 3.1 document built from the router's own route table — paths,
/// parameters, request bodies and answers, with schemas taken from the Codable types the routes
/// decode and encode — so it cannot drift from what is served.
final class OpenAPIDocument: Sendable {
    private let document = Mutex<JSON>(.null)

    func publish(_ routes: [RouteInfo]) {
        let built = Self.build(routes)
        document.withLock { $0 = built }
    }

    func addRoutes(to api: RouteGroup) {
        api.get("/openapi.json", summary: "This document", doc: .init(answer: JSON.self)) { [self] _ in
            .json(document.withLock { $0 })
        }
    }

    /// Every error answers this shape (SPEC §5).
    static let errorSchema = JSONSchema.object(
        properties: [
            .init("error", .object(properties: [.init("code", .string), .init("message", .string)], required: ["code", "message"]))
        ], required: ["error"])

    static func build(_ routes: [RouteInfo]) -> JSON {
        var paths: [String: JSON] = [:]
        var schemas: [String: JSON] = ["Error": json(errorSchema)]
        for route in routes {
            var operations: [String: JSON]
            if case .object(let existing)? = paths[route.path] { operations = existing } else { operations = [:] }
            operations[route.method.rawValue.lowercased()] = operation(route, schemas: &schemas)
            paths[route.path] = .object(operations)
        }
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "emupanel", "version": .string(Release.current),
                "description": "Control panel for RISC-V guests: machine types with migration tiers, snapshots, live migration.",
            ],
            "servers": [["url": "/"]],
            "security": [["bearer": []], ["session": []]],
            "components": [
                "securitySchemes": [
                    "bearer": ["type": "http", "scheme": "bearer"],
                    "session": [
                        "type": "apiKey", "in": "cookie", "name": .string(SessionStore.cookiePrefix + "PORT"),
                        "description":
                            "Set by POST /session; PORT is the port the panel serves on, so panels on one machine keep their own sessions.",
                    ],
                ],
                "schemas": .object(schemas),
            ],
            "paths": .object(paths),
        ]
    }

    private static func operation(_ route: RouteInfo, schemas: inout [String: JSON]) -> JSON {
        let documentation = route.documentation
        var responses: [String: JSON] = [
            "default": ["description": "An error", "content": ["application/json": ["schema": reference("Error")]]]
        ]
        for answer in documentation.answers {
            var response: [String: JSON] = ["description": .string(description(of: answer.status))]
            if let body = answer.body {
                schemas[body.name] = json(body.schema)
                response["content"] = ["application/json": ["schema": reference(body.name)]]
            }
            responses[String(answer.status.rawValue)] = .object(response)
        }
        if documentation.eventStream {
            responses["200"] = [
                "description": "Server-Sent Events; each message's data is one event as JSON",
                "content": ["text/event-stream": ["schema": ["type": "string"]]],
            ]
        }
        var operation: [String: JSON] = [
            "summary": .string(route.summary),
            "operationId": .string(operationID(route)),
            "responses": .object(responses),
        ]
        if !route.tag.isEmpty { operation["tags"] = [.string(route.tag)] }
        if !route.requiresAuth { operation["security"] = [] }
        var parameters: [JSON] = route.path.split(separator: "/").filter { $0.hasPrefix("{") && $0.hasSuffix("}") }.map {
            ["name": .string(String($0.dropFirst().dropLast())), "in": "path", "required": true, "schema": ["type": "string"]]
        }
        parameters += documentation.query.map {
            ["name": .string($0.name), "in": "query", "required": false, "description": .string($0.description), "schema": json($0.schema)]
        }
        if !parameters.isEmpty { operation["parameters"] = .array(parameters) }
        if let body = documentation.body {
            schemas[body.name] = json(body.schema)
            operation["requestBody"] = ["required": true, "content": ["application/json": ["schema": reference(body.name)]]]
        }
        return .object(operation)
    }

    private static func reference(_ name: String) -> JSON { ["$ref": .string("#/components/schemas/\(name)")] }

    private static func description(of status: HTTPStatus) -> String {
        switch status.rawValue {
        case 201: "Created"
        case 202: "Accepted: the task that does it"
        case 204: "Done; no body"
        default: "OK"
        }
    }

    /// A schema as document JSON (through its Encodable form, so there is one rendering).
    static func json(_ schema: JSONSchema) -> JSON {
        guard let data = try? JSONEncoder().encode(schema), let value = try? JSONDecoder().decode(JSON.self, from: data) else { return [:] }
        return value
    }

    private static func operationID(_ route: RouteInfo) -> String {
        let words = route.path.split(separator: "/").dropFirst(2).map { segment -> String in
            let word = segment.hasPrefix("{") ? "by-" + segment.dropFirst().dropLast() : String(segment)
            return word.replacingOccurrences(of: ".", with: "-")
        }
        return ([route.method.rawValue.lowercased()] + words).joined(separator: "-")
    }
}
