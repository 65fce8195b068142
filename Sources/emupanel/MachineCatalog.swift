import EmulatorCore
import RISCV

/// Where every command gets its machine types from: the board module's table
/// (`virt-X.Y`, `sandbox`, …). `serve` passes the same registry to the panel.
enum MachineCatalog {
    static var registry: MachineRegistry { VirtMachineTypes.registry }
}
