/// A table of text for human output: columns padded to their widest cell, numbers aligned
/// to the right.
struct TextTable {
    let headers: [String]
    /// Which columns hold numbers (right-aligned).
    let numeric: Set<Int>
    private(set) var rows: [[String]] = []

    init(_ headers: [String], numeric: Set<Int> = []) {
        self.headers = headers
        self.numeric = numeric
    }

    mutating func add(_ row: [String]) { rows.append(row) }

    /// The table, one line per row, the header first.
    var text: String {
        let all = [headers] + rows
        let widths = headers.indices.map { column in all.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0 }
        return all.map { row in
            row.indices.map { column in
                let cell = row[column]
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                if column == row.count - 1 && !numeric.contains(column) { return cell }
                return numeric.contains(column) ? pad + cell : cell + pad
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}
