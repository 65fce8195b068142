import ArgumentParser
import PanelCore

extension Emupanel {
    /// `emupanel machines`: every machine type with its migration tier (SPEC §1, §4).
    struct Machines: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "machines",
            abstract: "List machine types with their migration tier.",
            discussion: "--json prints exactly what GET /api/v1/machine-types answers.")

        @Flag(help: "Print JSON (the API's list shape) instead of a table.")
        var json = false

        func run() throws {
            let list = MachineTypeSummary.list(MachineCatalog.registry)
            print(json ? MachineTypeSummary.json(list) : MachineTypeSummary.table(list), terminator: json ? "\n" : "")
        }
    }
}
