// The RISCV module; its contents arrive with their issues (docs/ARCHITECTURE.md).
