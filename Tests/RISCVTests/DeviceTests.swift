// Register-level behaviour of the devices (offsets from their own files).
import Testing

@testable import RISCV

@Suite struct UARTTests {
    /// Console input waits for the guest up to a cap, in order, whatever the reads' sizes.
    @Test func consoleInputIsBoundedAndKeepsItsOrder() {
        let console = SerialConsole { _ in }
        let chunk = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        var sent: [UInt8] = []
        while console.send(chunk) { sent += chunk }
        #expect(sent.count == SerialConsole.inputCapacity)
        #expect(!console.send([1]), "full: refused, nothing queued")
        var read: [UInt8] = []
        while console.hasInput { read += console.takeInput(max: 16) }
        #expect(read == sent)
        #expect(console.send(chunk), "room again once read")
        #expect(console.takeInput(max: 5000) == chunk)
    }

    @Test func receiveFIFOAndInterruptIdentification() {
        let u = UART16550()
        u.write(offset: UART16550.iirFCR, size: 1, value: 0x01)  // FIFO on, trigger 1
        u.write(offset: UART16550.ier, size: 1, value: 0x01)  // RX interrupts
        #expect(!u.interruptLine)
        for b in Array("abc".utf8) { u.receive(b) }
        #expect(u.interruptLine)
        #expect(u.read(offset: UART16550.iirFCR, size: 1) == 0xc4)  // FIFO bits + RDI
        #expect(u.read(offset: UART16550.lsr, size: 1) & 1 == 1)
        #expect(u.read(offset: UART16550.rbrTHR, size: 1) == UInt64(UInt8(ascii: "a")))
        _ = u.read(offset: UART16550.rbrTHR, size: 1)
        _ = u.read(offset: UART16550.rbrTHR, size: 1)
        #expect(!u.interruptLine)
        #expect(u.read(offset: UART16550.lsr, size: 1) == 0x60)
    }

    @Test func fifoHoldsSixteenAndDisabledFIFOOne() {
        let u = UART16550()
        #expect(u.receiveCapacity == 1)
        u.write(offset: UART16550.iirFCR, size: 1, value: 0x01)
        for _ in 0..<20 { u.receive(1) }
        #expect(u.state.receiveFIFO.count == 16)
        u.write(offset: UART16550.iirFCR, size: 1, value: 0x03)  // clear RX
        #expect(u.state.receiveFIFO.isEmpty)
    }

    @Test func transmitterEmptyInterrupt() {
        let u = UART16550()
        u.write(offset: UART16550.ier, size: 1, value: 0x02)
        #expect(u.interruptLine)  // enabling with THR empty raises it
        #expect(u.read(offset: UART16550.iirFCR, size: 1) == 0x02)
        #expect(!u.interruptLine)  // reading IIR cleared it
        u.write(offset: UART16550.rbrTHR, size: 1, value: 0x41)
        #expect(u.transmitted == [0x41])
        #expect(u.interruptLine)
    }

    @Test func divisorLatchAndBadAccessesAreHarmless() {
        let u = UART16550()
        u.write(offset: UART16550.lcr, size: 1, value: 0x80)
        u.write(offset: UART16550.rbrTHR, size: 1, value: 0x34)
        u.write(offset: UART16550.ier, size: 1, value: 0x12)
        #expect(u.state.divisor == 0x1234)
        #expect(u.transmitted.isEmpty)
        u.write(offset: UART16550.rbrTHR, size: 4, value: 0xffff)  // wrong size: ignored
        #expect(u.read(offset: 0x40, size: 1) == 0)
    }
}

@Suite struct PLICTests {
    @Test func claimCompleteWithPriorityAndThreshold() {
        let p = PLIC()
        p.write(offset: 4 * 10, size: 4, value: 3)  // priority(10) = 3
        p.write(offset: 4 * 5, size: 4, value: 5)  // priority(5) = 5
        p.write(offset: PLIC.enableBase + PLIC.enableStride, size: 4, value: (1 << 10) | (1 << 5))  // S context
        p.setLevel(irq: 10, high: true)
        p.setLevel(irq: 5, high: true)
        #expect(p.lines == Hart.irqSEI)
        let claimS = PLIC.contextBase + PLIC.contextStride + 4
        #expect(p.read(offset: claimS, size: 4) == 5)  // higher priority first
        #expect(p.read(offset: claimS, size: 4) == 10)
        #expect(p.read(offset: claimS, size: 4) == 0)
        #expect(p.lines == 0)  // both in service
        p.write(offset: claimS, size: 4, value: 10)  // complete: line still high
        #expect(p.lines == Hart.irqSEI)
        p.write(offset: PLIC.contextBase + PLIC.contextStride, size: 4, value: 3)  // threshold 3
        #expect(p.lines == 0)  // priority 3 is not above 3
    }

    @Test func lowLineWithdrawsRequest() {
        let p = PLIC()
        p.write(offset: 4 * 10, size: 4, value: 1)
        p.write(offset: PLIC.enableBase, size: 4, value: 1 << 10)  // M context
        p.setLevel(irq: 10, high: true)
        #expect(p.lines == Hart.irqMEI)
        p.setLevel(irq: 10, high: false)
        #expect(p.lines == 0)
    }
}

@Suite struct CLINTTests {
    @Test func timerCompareAndSoftwareInterrupt() throws {
        let m = try VirtMachine(configuration: MachineConfiguration(memoryMiB: 2, clock: .defaultICount))
        let clint = m.bus.clint
        clint.write(offset: CLINT.mtime, size: 8, value: 1000)
        #expect(clint.read(offset: CLINT.mtime, size: 8) == 1000)
        clint.write(offset: CLINT.mtimecmp, size: 4, value: 999)
        clint.write(offset: CLINT.mtimecmp + 4, size: 4, value: 0)
        #expect(clint.lines == Hart.irqMTI)
        clint.write(offset: CLINT.mtimecmp, size: 8, value: 2000)
        #expect(clint.lines == 0)
        clint.write(offset: CLINT.msip, size: 4, value: 1)
        #expect(clint.lines == Hart.irqMSI)
        #expect(clint.read(offset: 0x1234, size: 8) == 0)  // logged and ignored
    }

    @Test func icountTimeFollowsInstructions() throws {
        let m = try VirtMachine(configuration: MachineConfiguration(memoryMiB: 2, clock: .icount(shift: 4)))
        try m.ram.write([0x6f, 0, 0, 0], at: m.ram.region.base)  // j .
        m.hart.reset(pc: m.ram.region.base)
        m.bus.clint.mtimecmp = .max
        let t0 = m.bus.clint.clock.mtime
        _ = m.run(maxInstructions: 1600)
        #expect(m.bus.clint.clock.mtime == t0 + 100)
    }
}
