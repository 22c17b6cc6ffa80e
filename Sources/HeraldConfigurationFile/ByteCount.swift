/// A byte count written as a plain number or with a binary suffix: `65536`, `64K`, `8M`,
/// `8MiB`, `1G` (heraldd's byte-count flags and the configuration file's byte limits).
public struct ByteCount: Sendable, Equatable, CustomStringConvertible {
    /// The number of bytes.
    public let value: Int

    /// Parses `text`; nil unless it is a positive count with an optional suffix.
    public init?(_ text: String) {
        let text = text.trimmingSpaces().uppercased()
        let units: [(String, Int)] = [("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1)]
        for (suffix, multiplier) in units where text.hasSuffix(suffix) {
            guard let number = Int(text.dropLast(suffix.count)), number > 0,
                number <= Int.max / multiplier
            else { return nil }
            value = number * multiplier
            return
        }
        guard let number = Int(text), number > 0 else { return nil }
        value = number
    }

    /// A count of `value` bytes.
    public init(value: Int) {
        self.value = value
    }

    public var description: String { "\(value)" }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
