// Plain-text tables for the command line (`machines`, `snapshot inspect`): no
// terminal library, so the output is the same in a pipe and in CI logs.

/// Left-aligned columns separated by two blanks, for the command line's tables.
public enum TextTable {
    public static func render(header: [String], rows: [[String]], indent: String = "") -> [String] {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            var line = indent
            for (column, cell) in row.enumerated() {
                line += cell
                if column < row.count - 1 { line += String(repeating: " ", count: widths[column] - cell.count + 2) }
            }
            return line
        }
    }
}
