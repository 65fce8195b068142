// Type erasure over VMStateDescription<State>, so that machines can hold the
// descriptions of devices with different State types in one list, and streams can
// save and load them without knowing the types.

public struct AnyVMStateDescription: Sendable {
    public let name: String
    public let versionID: Int
    public let minimumVersionID: Int
    /// The described State type's name, for error texts.
    public let stateTypeName: String
    let stateTypeID: ObjectIdentifier

    private let saveState: @Sendable (Any, QEMUFileWriter) throws -> JSONValue
    private let loadState: @Sendable (Any, QEMUFileReader, Int) throws -> Any
    private let dumpDescription: @Sendable (Set<String>) -> JSONValue
    private let listProblems: @Sendable () -> [String]
    private let listUncovered: @Sendable (Any) -> [String]?
    private let findSubsection: @Sendable (String) -> AnyVMStateDescription?

    public init<State>(_ description: VMStateDescription<State>) {
        name = description.name
        versionID = description.versionID
        minimumVersionID = description.minimumVersionID
        stateTypeName = String(describing: State.self)
        stateTypeID = ObjectIdentifier(State.self)
        let name = description.name
        saveState = { state, out in
            guard let state = state as? State else {
                throw VMStateError.stateTypeMismatch(
                    device: name, expected: String(describing: State.self),
                    actual: String(describing: type(of: state)))
            }
            return try description.save(state, to: out)
        }
        loadState = { state, input, versionID in
            guard var state = state as? State else {
                throw VMStateError.stateTypeMismatch(
                    device: name, expected: String(describing: State.self),
                    actual: String(describing: type(of: state)))
            }
            try description.load(&state, from: input, versionID: versionID)
            return state
        }
        dumpDescription = { description.dump(omittingSubsections: $0) }
        listProblems = { description.problems() }
        listUncovered = { state in (state as? State).map { description.uncoveredProperties(of: $0) } }
        findSubsection = { subsectionName in
            description.subsections.first { $0.description.name == subsectionName }.map {
                AnyVMStateDescription($0.description)
            }
        }
    }

    /// True when this describes values of `type`.
    public func describes(_ type: Any.Type) -> Bool { ObjectIdentifier(type) == stateTypeID }

    @discardableResult
    public func save(_ state: Any, to out: QEMUFileWriter) throws -> JSONValue { try saveState(state, out) }

    /// Decodes into a copy of `state` and returns it; `state` itself is never touched.
    public func load(from input: QEMUFileReader, into state: Any, versionID: Int) throws -> Any {
        try loadState(state, input, versionID)
    }

    public func dump(omittingSubsections omitted: Set<String> = []) -> JSONValue { dumpDescription(omitted) }
    /// The subsection called `name`, if this description has one.
    public func subsection(named name: String) -> AnyVMStateDescription? { findSubsection(name) }
    public func problems() -> [String] { listProblems() }
    /// Stored properties of `state` no field carries; nil if `state` has another type.
    public func uncoveredProperties(of state: Any) -> [String]? { listUncovered(state) }
}

/// One registered piece of device state in a stream: QEMU's SaveStateEntry.
/// `idstr` and `instanceID` together name the section on the wire.
public struct SaveStateEntry {
    public let idstr: String
    public let instanceID: UInt32
    public let description: AnyVMStateDescription
    let getState: () -> Any
    let setState: (Any) -> Void

    public init(
        idstr: String? = nil, instanceID: UInt32 = 0, description: AnyVMStateDescription,
        get: @escaping () -> Any, set: @escaping (Any) -> Void
    ) {
        self.idstr = idstr ?? description.name
        self.instanceID = instanceID
        self.description = description
        self.getState = get
        self.setState = set
    }

    public init<State>(
        idstr: String? = nil, instanceID: UInt32 = 0, description: VMStateDescription<State>,
        get: @escaping () -> State, set: @escaping (State) -> Void
    ) {
        self.init(
            idstr: idstr, instanceID: instanceID, description: AnyVMStateDescription(description),
            get: { get() }, set: { if let state = $0 as? State { set(state) } })
    }
}
