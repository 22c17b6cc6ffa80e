import ArgumentParser

/// A byte count written as a plain number or with a binary suffix: `65536`, `64K`, `8M`, `8MiB`, `1G`.
struct ByteCount: ExpressibleByArgument, CustomStringConvertible {
    let value: Int

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: " ").uppercased()
        let units: [(String, Int)] = [("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1)]
        for (suffix, multiplier) in units where text.hasSuffix(suffix) {
            guard let number = Int(text.dropLast(suffix.count)), number > 0 else { return nil }
            value = number * multiplier
            return
        }
        guard let number = Int(text), number > 0 else { return nil }
        value = number
    }

    var description: String { "\(value)" }
}

extension String {
    fileprivate func trimmingCharacters(in character: Character) -> String {
        String(drop(while: { $0 == character }).reversed().drop(while: { $0 == character }).reversed())
    }
}
