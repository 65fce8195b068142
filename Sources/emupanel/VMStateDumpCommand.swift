import ArgumentParser

extension Emupanel.VMStateCommand {
    /// `emupanel vmstate dump --machine NAME`: the JSON QEMU's `-dump-vmstate` would write.
    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dump",
            abstract: "Write a machine type's state descriptions in QEMU's -dump-vmstate layout to stdout.")

        @Option(help: "Machine type name or alias.")
        var machine: String

        func run() throws {
            print(try MachineCatalog.registry.resolve(machine).vmstateDump(), terminator: "")
        }
    }
}
