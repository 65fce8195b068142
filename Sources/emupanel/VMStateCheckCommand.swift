import ArgumentParser
import EmulatorCore
import Foundation

extension Emupanel.VMStateCommand {
    /// `emupanel vmstate check OLD NEW`: QEMU's vmstate-static-checker.py rules.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Compare two vmstate dumps by the rules of QEMU's static checker.",
            discussion: """
                OLD is the migration source, NEW the destination; run it both ways to promise \
                backward migration too. Each problem is one line on stdout and the exit status \
                is the number of problems (at most 255). Input that cannot be read or is not a \
                dump prints one line on stderr, nothing on stdout, and exits 1.
                """)

        @Argument(help: "The source's dump (OLD.json).")
        var old: String

        @Argument(help: "The destination's dump (NEW.json).")
        var new: String

        func run() throws {
            let result = try VMStateDumpFiles.check(oldPath: old, newPath: new)
            for warning in result.warnings { FileHandle.standardError.write(Data((warning + "\n").utf8)) }
            for problem in result.problems { print(problem) }
            if result.exitStatus != 0 { throw ExitCode(result.exitStatus) }
        }
    }
}
