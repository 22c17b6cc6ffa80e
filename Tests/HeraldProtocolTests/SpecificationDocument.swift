import Foundation

/// The parts of Protocol/PROTOCOL.md that tests compare with the code. Each part follows an
/// HTML comment marker (`<!-- error-codes -->`, …), so prose edits do not affect parsing.
struct SpecificationDocument {
    let lines: [String]

    init() throws {
        lines = try String(contentsOf: RepositoryPaths.specification, encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    private func lineIndex(after marker: String) throws -> Int {
        guard let index = lines.firstIndex(of: "<!-- \(marker) -->") else {
            throw FixtureError("PROTOCOL.md has no <!-- \(marker) --> marker")
        }
        return index + 1
    }

    /// The body rows of the table after `marker`, as trimmed cells (header and separator skipped).
    func tableRows(after marker: String) throws -> [[String]] {
        let rows = try lines[lineIndex(after: marker)...].prefix { $0.hasPrefix("|") }
        return rows.dropFirst(2).map { row in
            row.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }

    /// The frames of the annotated hex listing after `marker`: a line starting with `C→B` or
    /// `B→C` opens a frame; indented lines hold hex groups, optionally followed by `; comment`.
    func hexListing(after marker: String) throws -> [(direction: String, bytes: [UInt8])] {
        let start = try lineIndex(after: marker)
        guard lines.indices.contains(start), lines[start].hasPrefix("```") else {
            throw FixtureError("PROTOCOL.md: a code block must follow <!-- \(marker) -->")
        }
        var frames: [(direction: String, bytes: [UInt8])] = []
        for line in lines[(start + 1)...].prefix(while: { !$0.hasPrefix("```") }) {
            if line.hasPrefix("C→B") || line.hasPrefix("B→C") {
                frames.append((String(line.prefix(3)), []))
                continue
            }
            let hex = line.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let digits = hex.filter { !$0.isWhitespace }
            guard !digits.isEmpty else { continue }
            guard !frames.isEmpty, let bytes = Hex.bytes(String(digits)) else {
                throw FixtureError("PROTOCOL.md worked example: cannot read \"\(line)\"")
            }
            frames[frames.count - 1].bytes += bytes
        }
        return frames
    }
}
