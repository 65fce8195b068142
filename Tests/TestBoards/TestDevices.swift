// Devices of the small boards the tests define (PanelTests, CLITests, EmulatorCoreTests), in
// one place: a release-1.1-like UART, a timer, a finisher and a host device that blocks migration.
import EmulatorCore
import Foundation
import VMState

/// An NS16550A-like UART: version 2 added `lsr`; a FIFO depth other than 16 travels in a
/// subsection that an old machine version switches off with a compat property.
public final class TestUART: Device {
    public struct State: Equatable, Sendable {
        public var ier: UInt8 = 0
        public var lsr: UInt8 = 0x60
        public var fifoDepth: UInt32 = 16
        public init(ier: UInt8 = 0, lsr: UInt8 = 0x60, fifoDepth: UInt32 = 16) {
            self.ier = ier
            self.lsr = lsr
            self.fifoDepth = fifoDepth
        }
    }
    public static let driver = "ns16550a"
    public static let properties: [PropertyDefinition] = [.uint("fifo-depth", default: 64)]
    public static let migration = DeviceMigration<State>.vmstate(
        VMStateDescription(
            name: "ns16550a", versionID: 2, minimumVersionID: 1,
            fields: [.uint8(\.ier), .uint8(\.lsr, since: 2)],
            subsections: [
                .init(
                    VMStateDescription(
                        name: "ns16550a/fifo-depth", versionID: 1, minimumVersionID: 1,
                        fields: [.uint32(\.fifoDepth)]),
                    needed: { $0.fifoDepth != 16 })
            ],
            preLoad: { $0.fifoDepth = 16 }))
    public var state = State()
    public init() {}
}

/// A CLINT-like timer whose state is its compare register.
public final class TestTimer: Device {
    public struct State: Equatable, Sendable {
        public var mtimecmp: UInt64 = .max
        public init(mtimecmp: UInt64 = .max) { self.mtimecmp = mtimecmp }
    }
    public static let driver = "test-timer"
    public static let migration = DeviceMigration<State>.vmstate(
        VMStateDescription(
            name: "test-timer", versionID: 1, minimumVersionID: 1, fields: [.uint64(\.mtimecmp)]))
    public var state = State()
    public init() {}
}

/// A test finisher: a device with no state at all.
public final class TestFinisher: Device {
    public static let driver = "test-finisher"
    public static let migration = DeviceMigration<NoState>.stateless
    public init() {}
}

/// A device that holds host state, so a board carrying it cannot migrate (tier none).
public final class TestHostSerial: Device {
    public static let driver = "host-serial"
    public static let migration = DeviceMigration<NoState>.unmigratable(reason: "holds an open host tty")
    public init() {}
}

public func utcDate(_ year: Int, _ month: Int, _ day: Int) -> Date {
    Calendar(identifier: .gregorian).date(
        from: DateComponents(
            timeZone: TimeZone(identifier: "UTC"), year: year,
            month: month, day: day))!
}
