// SiFive test finisher ("sifive,test0", QEMU hw/misc/sifive_test.c): a
// 32-bit write ends the run. Low 16 bits: 0x5555 pass, 0x3333 fail with the
// exit code in the high 16 bits, 0x7777 reset.

import EmulatorCore

public enum FinisherRequest: Equatable, Sendable {
    case pass
    case fail(code: UInt32)
    case reset
}

public final class TestFinisher {
    // Register offsets
    static let finisher: UInt64 = 0x0

    static let statusFail: UInt64 = 0x3333
    static let statusPass: UInt64 = 0x5555
    static let statusReset: UInt64 = 0x7777

    /// Set by a guest write; read and cleared by the run loop.
    var request: FinisherRequest?

    func read(offset: UInt64, size: Int) -> UInt64 {
        GuestErrorLog.log("sifive_test: read at 0x\(String(offset, radix: 16))")
        return 0
    }

    func write(offset: UInt64, size: Int, value: UInt64) {
        guard offset == TestFinisher.finisher, size == 4 || size == 2 else {
            GuestErrorLog.log("sifive_test: bad write at 0x\(String(offset, radix: 16)) size \(size)")
            return
        }
        switch value & 0xffff {
        case TestFinisher.statusPass: request = .pass
        case TestFinisher.statusFail: request = .fail(code: UInt32((value >> 16) & 0xffff))
        case TestFinisher.statusReset: request = .reset
        default: GuestErrorLog.log("sifive_test: unknown status 0x\(String(value, radix: 16))")
        }
    }

    func reset() { request = nil }
}

extension TestFinisher: Device {
    public static let driver = "sifive_test"
    /// No guest-visible state: a write is an event the run loop consumes at once, never
    /// something a snapshot could catch half-done.
    public static let migration = DeviceMigration<NoState>.stateless
}
