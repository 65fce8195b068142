// The VMState module; its contents arrive with their issues (docs/ARCHITECTURE.md).
