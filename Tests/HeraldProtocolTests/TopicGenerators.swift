import PropertyBased

/// Random valid topics, as lists of levels. Levels mix ASCII, multi-byte UTF-8 and `$`, so
/// some topics are reserved (`$` first) and some only contain `$` further in.
enum TopicGenerators {
    static let levelCharacter = Gen<Character?>.element(of: Array("abcxyz019-_. éü日🎉$")).map { $0! }

    static let level = levelCharacter.string(of: 1...5)

    static let levels = level.array(of: 1...6)
}
