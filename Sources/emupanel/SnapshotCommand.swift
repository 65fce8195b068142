import ArgumentParser

extension Emupanel {
    /// `emupanel snapshot …`: snapshot files on disk.
    struct SnapshotCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "snapshot",
            abstract: "Work with snapshot files (QEMU's QEVM stream format).",
            subcommands: [Inspect.self])
    }
}
