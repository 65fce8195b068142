import ArgumentParser

/// `emupanel`: the panel server and the headless tools around the emulator (SPEC §4).
@main
struct Emupanel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emupanel",
        abstract: "A web control panel for RISC-V guests with snapshots and live migration.",
        subcommands: [Serve.self, Run.self, Machines.self, VMStateCommand.self, SnapshotCommand.self]
    )
}
