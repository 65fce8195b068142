// What every device tells the machine about migration. A device keeps its
// guest-visible state in one value (`State`) and declares exactly one of: the
// description that saves it, that it has no state, or that it cannot migrate and
// why. QEMU silently drops state nobody described; emupanel refuses such a device.
import VMState

/// The `State` of a device that has none.
public struct NoState: Equatable, Sendable {
    public init() {}
}

/// A device's one migration declaration (SPEC §1).
public enum DeviceMigration<State>: Sendable {
    /// Its state travels in this description.
    case vmstate(VMStateDescription<State>)
    /// It has no guest-visible state; only valid when `State` is `NoState`.
    case stateless
    /// It holds host state that cannot move (a passthrough, an open host file); the
    /// reason is shown to users as a migration blocker.
    case unmigratable(reason: String)
}

// SendableMetatype: machine types (Sendable) keep the device type to build and ask it later.
public protocol Device: AnyObject, SendableMetatype {
    associatedtype State = NoState
    /// QEMU's type name, which compat properties name as their `driver` ("ns16550a").
    static var driver: String { get }
    static var migration: DeviceMigration<State> { get }
    /// Typed properties with their defaults; compat properties may override them.
    static var properties: [PropertyDefinition] { get }
    /// The guest-visible state, read when saving and replaced when a load commits.
    var state: State { get set }
    /// Subsections that can never be `needed` with these property values because the feature
    /// whose state they carry is switched off (by a machine version's compat properties). The
    /// machine type's dump leaves them out, so an old machine version's dump stays exactly
    /// what its release froze.
    static func subsectionsSwitchedOff(by properties: DeviceProperties) -> Set<String>
}

extension Device {
    public static var properties: [PropertyDefinition] { [] }
    public static func subsectionsSwitchedOff(by properties: DeviceProperties) -> Set<String> { [] }
}

extension Device where State == NoState {
    public var state: NoState {
        get { NoState() }
        set {}
    }
}

/// A migration declaration without the State type, for machine types and registries.
public enum MigrationDeclaration: Sendable {
    case vmstate(AnyVMStateDescription)
    case stateless
    case unmigratable(reason: String)
}

extension Device {
    static var erasedMigration: MigrationDeclaration {
        switch migration {
        case .vmstate(let description): return .vmstate(AnyVMStateDescription(description))
        case .stateless: return .stateless
        case .unmigratable(let reason): return .unmigratable(reason: reason)
        }
    }

    /// Why this device type can never be registered, or nil when it can.
    static func registrationProblems() -> [String] {
        switch migration {
        case .stateless where State.self != NoState.self:
            return ["\(driver): declared stateless but holds \(State.self); give it a VMState description"]
        case .vmstate(let description):
            return description.problems().map { "\(driver): \($0)" }
        case .unmigratable(let reason) where reason.isEmpty:
            return ["\(driver): declared unmigratable without a reason"]
        default:
            return []
        }
    }
}
