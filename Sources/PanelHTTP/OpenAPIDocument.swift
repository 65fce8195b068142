import HTTPServer
import PanelCore
import Synchronization

/// `GET /openapi.json`: an OpenAPI 3.1 document built from the router's own route table,
/// so it cannot drift from what is served.
final class OpenAPIDocument: Sendable {
    private let routes = Mutex<[RouteInfo]>([])

    func publish(_ routes: [RouteInfo]) { self.routes.withLock { $0 = routes } }

    func addRoutes(to api: RouteGroup) {
        api.get("/openapi.json", summary: "This document") { [self] _ in .json(document()) }
    }

    func document() -> JSON {
        var paths: [String: JSON] = [:]
        for route in routes.withLock({ $0 }) {
            var operations: [String: JSON]
            if case .object(let existing)? = paths[route.path] { operations = existing } else { operations = [:] }
            var operation: [String: JSON] = [
                "summary": .string(route.summary),
                "operationId": .string(Self.operationID(route)),
                "responses": [
                    "default": ["description": "Success, or the error shape", "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]]],
                ],
            ]
            if !route.tag.isEmpty { operation["tags"] = [.string(route.tag)] }
            if !route.requiresAuth { operation["security"] = [] }
            let parameters = route.path.split(separator: "/").filter { $0.hasPrefix("{") && $0.hasSuffix("}") }
            if !parameters.isEmpty {
                operation["parameters"] = .array(parameters.map {
                    ["name": .string(String($0.dropFirst().dropLast())), "in": "path", "required": true, "schema": ["type": "string"]]
                })
            }
            operations[route.method.rawValue.lowercased()] = .object(operation)
            paths[route.path] = .object(operations)
        }
        return [
            "openapi": "3.1.0",
            "info": ["title": "emupanel", "version": .string(Release.current),
                     "description": "Control panel for RISC-V guests: machine types with migration tiers, snapshots, live migration."],
            "servers": [["url": "/"]],
            "security": [["bearer": []], ["session": []]],
            "components": [
                "securitySchemes": [
                    "bearer": ["type": "http", "scheme": "bearer"],
                    "session": ["type": "apiKey", "in": "cookie", "name": .string(SessionStore.cookieName)],
                ],
                "schemas": [
                    "Error": [
                        "type": "object",
                        "properties": ["error": ["type": "object", "required": ["code", "message"],
                                                 "properties": ["code": ["type": "string"], "message": ["type": "string"]]]],
                    ],
                ],
            ],
            "paths": .object(paths),
        ]
    }

    private static func operationID(_ route: RouteInfo) -> String {
        let words = route.path.split(separator: "/").dropFirst(2).map { segment -> String in
            let word = segment.hasPrefix("{") ? "by-" + segment.dropFirst().dropLast() : String(segment)
            return word.replacingOccurrences(of: ".", with: "-")
        }
        return ([route.method.rawValue.lowercased()] + words).joined(separator: "-")
    }
}
