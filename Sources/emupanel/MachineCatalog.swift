import EmulatorCore

/// Where every command gets its machine types from. The board module (RISCV, issue 4)
/// defines the real ones (`virt-X.Y`, `sandbox`, …); until it is wired in, the registry
/// is empty. Wiring it is a one-line change here, and `serve` passes it to the panel.
enum MachineCatalog {
    static var registry: MachineRegistry { .empty }
}
