import ArgumentParser

extension Emupanel {
    /// `emupanel vmstate …`: QEMU's `-dump-vmstate` and its static checker (SPEC §2).
    struct VMStateCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "vmstate",
            abstract: "Dump a machine type's state descriptions, or compare two dumps.",
            subcommands: [Dump.self, Check.self])
    }
}
