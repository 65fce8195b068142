// Runs the built `emupanel` binary and collects what it printed.
import Foundation

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// The binary sits next to the test bundle (`.build/<triple>/debug/`); `.build/debug/` is the fallback.
let emupanelBinary: String = {
    let besideTests = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        .appendingPathComponent("emupanel").path
    if FileManager.default.isExecutableFile(atPath: besideTests) { return besideTests }
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    return packageRoot.appendingPathComponent(".build/debug/emupanel").path
}()

func emupanel(_ arguments: String...) throws -> CommandResult { try emupanel(arguments) }

func emupanel(_ arguments: [String]) throws -> CommandResult {
    // Output goes to files, not pipes: nothing can fill up and stall the child.
    let base = NSTemporaryDirectory() + "emupanel-run-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: base + ".out", contents: nil)
    _ = FileManager.default.createFile(atPath: base + ".err", contents: nil)
    defer {
        try? FileManager.default.removeItem(atPath: base + ".out")
        try? FileManager.default.removeItem(atPath: base + ".err")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: emupanelBinary)
    process.arguments = arguments
    process.standardOutput = FileHandle(forWritingAtPath: base + ".out")
    process.standardError = FileHandle(forWritingAtPath: base + ".err")
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    func read(_ path: String) -> String { String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self) }
    return CommandResult(status: process.terminationStatus, stdout: read(base + ".out"), stderr: read(base + ".err"))
}
