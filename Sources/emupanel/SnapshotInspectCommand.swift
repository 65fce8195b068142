import ArgumentParser
import EmulatorCore

extension Emupanel.SnapshotCommand {
    /// `emupanel snapshot inspect FILE`: what a snapshot holds, without knowing its machine.
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "inspect",
            abstract: "Show a QEVM file's machine type, sections, devices and RAM summary.",
            discussion: "Works on any QEVM file; a file that is not a valid stream prints one line on stderr and exits 1.")

        @Argument(help: "The snapshot file.")
        var file: String

        @Flag(help: "Print JSON instead of text.")
        var json = false

        func run() throws {
            let inspection = try SnapshotInspection.inspect(path: file)
            print(json ? inspection.json().serialized(indent: 2) : inspection.text(), terminator: json ? "\n" : "")
        }
    }
}
