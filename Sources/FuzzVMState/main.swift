// libFuzzer target for the QEVM stream reader and inspector (docs/DECISIONS.md,
// scripts/fuzz). Not `-parse-as-library`: SwiftPM links executables through
// FuzzVMState_main, so this top-level code hands control to libFuzzer's driver.
// Built without -sanitize=fuzzer it runs the files named on the command line once
// each instead, which is how a crash input found by libFuzzer is replayed.
import CFuzzDriver
import Foundation
import VMState

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    VMStateFuzz.consume(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

let arguments = CommandLine.arguments
if arguments.count == 3 && arguments[1] == "--write-seed" {
    // The seed corpus: one valid stream of the fuzz machine.
    let written = FileManager.default.createFile(atPath: arguments[2], contents: Data(VMStateFuzz.seedStream()))
    exit(written ? 0 : 1)
}
if emupanel_fuzzer_linked() != 0 {
    exit(emupanel_fuzzer_run(CommandLine.argc, CommandLine.unsafeArgv, fuzzTestOneInput))
}
var count = 0
for path in arguments.dropFirst() {
    guard let data = FileManager.default.contents(atPath: path) else {
        FileHandle.standardError.write(Data("FuzzVMState: cannot read \(path)\n".utf8))
        exit(1)
    }
    VMStateFuzz.consume(Array(data))
    count += 1
}
print("FuzzVMState: built without libFuzzer; ran \(count) input(s). Use scripts/fuzz to fuzz.")
