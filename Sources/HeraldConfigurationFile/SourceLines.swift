/// Where things are in a configuration file's text, for messages that name a line.
///
/// TOMLKit gives positions for syntax errors only, so this reads the text once more: it
/// follows the `[table]` and `[[rule]]` headers and records the line of each header and of
/// each `key =` under it. Rules must be written as `[[rule]]` tables (one per rule) for
/// their lines to be known; ``ConfigurationFile`` checks that the counts agree.
struct SourceLines {
    /// Line of each `[table]` header by table name.
    private(set) var tables: [String: Int] = [:]
    /// Line of each `[[rule]]` header, in order.
    private(set) var rules: [Int] = []
    /// Line of each key, by table ("" for the top level, "rule#N" for the Nth rule).
    private var keys: [String: [String: Int]] = [:]

    init(_ text: String) {
        var table = ""
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.drop { $0 == " " || $0 == "\t" }
            if line.hasPrefix("[[") {
                let name = Self.headerName(line.dropFirst(2))
                if name == "rule" {
                    rules.append(lineNumber)
                    table = "rule#\(rules.count - 1)"
                } else {
                    table = name
                }
                tables[table] = tables[table] ?? lineNumber
            } else if line.hasPrefix("[") {
                table = Self.headerName(line.dropFirst())
                tables[table] = tables[table] ?? lineNumber
            } else if let equals = line.firstIndex(of: "="), !line.hasPrefix("#") {
                let key = line[..<equals].trimmingCharacters().trimmingQuotes()
                if keys[table, default: [:]][key] == nil { keys[table, default: [:]][key] = lineNumber }
            }
        }
    }

    /// The line of `key` in `table`, else of the table's header, else 0.
    func line(of key: String, in table: String) -> Int {
        keys[table]?[key] ?? tables[table] ?? 0
    }

    /// The line of `[name]`, else of a top-level `name =`, else 0.
    func line(ofTable name: String) -> Int {
        tables[name] ?? line(of: name, in: "")
    }

    private static func headerName(_ rest: Substring) -> String {
        String(rest.prefix { $0 != "]" }).trimmingCharacters().trimmingQuotes()
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
    }
}

extension String {
    fileprivate func trimmingQuotes() -> String {
        count >= 2 && (hasPrefix("\"") && hasSuffix("\"") || hasPrefix("'") && hasSuffix("'")) ? String(dropFirst().dropLast()) : self
    }
}
