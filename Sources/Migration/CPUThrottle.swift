import Foundation
import RISCV

/// Auto-converge's brake on a guest's vCPU, as QEMU's cpu-throttle does it: after every time
/// slice the vCPU runs, it sleeps `percentage / (100 - percentage)` of a slice (at 99%, 990 ms
/// per 10 ms; at 99.9%, the most, 9.99 s). The sleep is a closure the CPU thread runs between instruction slices
/// (`RunControl.perform`), so the interpreter knows nothing of it; with `--icount` guest time comes
/// from retired instructions, so a throttled guest computes exactly what an unthrottled one does.
///
/// Work for the CPU thread must not wait out a sleep (a dirty-log sync every millisecond would
/// stall for up to a second): `onCPU` hands it to the sleeping vCPU, which runs it and sleeps on.
final class CPUThrottle: @unchecked Sendable {  // every var is guarded by `condition`
    /// QEMU's CPU_THROTTLE_TIMESLICE_NS: the vCPU runs this long between sleeps.
    static let timeslice = Duration.milliseconds(10)
    /// The vCPU always gets a thousandth of the time.
    static let maximumPercentage = 99.9

    private let machine: LiveMachine
    private let condition = NSCondition()
    private var percentage = 0.0
    private var stopped = false
    /// A sleep queued on the CPU thread or under way there: work handed to it runs there.
    private var sleeping = false
    private var handed: [@Sendable (VirtMachine) -> Void] = []
    /// Sleeps taken, and work run inside them: how a test sees that it throttled.
    private var naps = 0
    private var handedRuns = 0
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    init(_ machine: LiveMachine) {
        self.machine = machine
    }

    var isSleeping: Bool { condition.withLock { sleeping } }
    var napsTaken: Int { condition.withLock { naps } }
    var workRunAsleep: Int { condition.withLock { handedRuns } }

    /// 0 lets the vCPU run freely (a sleep under way ends); 1...99 throttles it.
    func set(percentage value: Double) {
        let timer = condition.withLock { () -> Thread? in
            percentage = min(max(value, 0), Self.maximumPercentage)
            condition.broadcast()
            guard thread == nil, percentage > 0, !stopped else { return nil }
            let timer = Thread { [self] in run() }
            timer.name = "emupanel-cpu-throttle"
            thread = timer
            return timer
        }
        timer?.start()
    }

    /// Ends throttling for good: a sleep under way ends now, and the timer thread is joined.
    func stop() {
        let running = condition.withLock { () -> Bool in
            stopped = true
            percentage = 0
            condition.broadcast()
            return thread != nil
        }
        if running { finished.wait() }
    }

    /// Runs `body` on the CPU thread: in the sleep when the vCPU sleeps here, else between slices.
    /// Which of the two is decided under the lock the timer thread queues its sleeps under, so
    /// a sleep queued just before `body` cannot hold it up: `body` is then handed to it.
    func onCPU<T: Sendable>(_ body: @escaping @Sendable (VirtMachine) throws -> T) throws -> T {
        guard machine.isRunning else { return try machine.onCPU(body) }
        let outcome = Outcome<T>()
        let work: @Sendable (VirtMachine) -> Void = { [self] cpu in
            let result = Result { try body(cpu) }
            condition.withLock {
                outcome.result = result
                condition.broadcast()
            }
        }
        condition.withLock {
            if sleeping {
                handed.append(work)
                condition.broadcast()
            } else {
                machine.control.perform(work)
            }
        }
        return try condition.withLock {
            while outcome.result == nil && machine.isRunning { _ = condition.wait(until: Date(timeIntervalSinceNow: 0.05)) }
            guard let result = outcome.result else { throw LiveMachineError.notRunning }
            return try result.get()
        }
    }

    /// Where handed work leaves its result.
    private final class Outcome<T>: @unchecked Sendable {  // written and read under the throttle's `condition`
        var result: Result<T, any Error>?
    }

    /// The timer thread: let the vCPU run a slice, queue its sleep, wait until it is over.
    private func run() {
        defer { finished.signal() }
        while true {
            let nap = condition.withLock { () -> Duration? in
                while percentage == 0 && !stopped { condition.wait() }
                if !stopped { _ = condition.wait(until: Date(timeIntervalSinceNow: Self.timeslice.seconds)) }
                guard !stopped, percentage > 0 else { return nil }
                sleeping = true
                return Self.timeslice * (percentage / (100 - percentage))
            }
            guard let nap else {
                if condition.withLock({ stopped }) { return }
                continue
            }
            machine.control.perform { [self] cpu in sleepOnCPU(cpu, for: nap) }
            // Until the sleep is over; a CPU thread that ended leaves it queued for good, and this one ends too.
            let cpuEnded = condition.withLock { () -> Bool in
                while sleeping && !stopped && machine.isRunning { _ = condition.wait(until: Date(timeIntervalSinceNow: 0.05)) }
                return !machine.isRunning
            }
            if cpuEnded { return }
        }
    }

    /// On the CPU thread: sleeps, running what is handed to it, until the time is up or the
    /// throttle is lifted.
    private func sleepOnCPU(_ cpu: VirtMachine, for duration: Duration) {
        let deadline = Date(timeIntervalSinceNow: duration.seconds)
        condition.lock()
        naps += 1
        while true {
            while !handed.isEmpty {
                let work = handed.removeFirst()
                handedRuns += 1
                condition.unlock()
                work(cpu)
                condition.lock()
                condition.broadcast()
            }
            if stopped || percentage == 0 || Date() >= deadline { break }
            _ = condition.wait(until: deadline)
        }
        sleeping = false
        condition.broadcast()
        condition.unlock()
    }
}

extension NSCondition {
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
