// `emupanel vmstate check OLD.json NEW.json`: reads the two dumps and runs
// VMState's checker. Reading and parsing problems are bad input, kept apart from
// the checker's problems, which are the command's result.
import Foundation
import VMState

public enum VMStateDumpFiles {
    /// QEMU's static checker over two dump files. Problems are the result; an unreadable
    /// file or text that is not a dump throws `InputError` (the CLI's "bad input").
    public static func check(oldPath: String, newPath: String) throws -> VMStateCheckResult {
        func read(_ path: String, _ role: String) throws -> JSONValue {
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw InputError("\(role) \(path): cannot read: \((error as NSError).localizedFailureReason ?? error.localizedDescription)")
            }
            do { return try JSONValue.parse(text) } catch { throw InputError("\(role) \(path): \(error)") }
        }
        let old = try read(oldPath, "OLD")
        let new = try read(newPath, "NEW")
        do { return try VMStateCheck.check(old: old, new: new) } catch { throw InputError("\(error)") }
    }
}
