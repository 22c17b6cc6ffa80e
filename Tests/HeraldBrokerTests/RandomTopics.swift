/// Random topics and filters over a few levels (including a `$` level and a non-ASCII
/// one), for checking a trie against filter-by-filter matching.
struct RandomTopics {
    static let levels = ["a", "b", "c", "$x", "long-level-name", "é"]
    var generator = SystemRandomNumberGenerator()

    /// One to four levels.
    mutating func topic() -> String {
        (0..<Int.random(in: 1...4, using: &generator)).map { _ in Self.levels.randomElement(using: &generator)! }
            .joined(separator: "/")
    }

    /// One to four levels, some `+`, maybe a final `#`.
    mutating func filter() -> String {
        let count = Int.random(in: 1...4, using: &generator)
        return (0..<count).map { position in
            switch Int.random(in: 0..<6, using: &generator) {
            case 0: "+"
            case 1 where position == count - 1: "#"
            default: Self.levels.randomElement(using: &generator)!
            }
        }.joined(separator: "/")
    }
}
