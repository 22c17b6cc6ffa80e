import HeraldProtocol
import PropertyBased
import Testing

/// Properties of topic matching over random valid topics.
@Suite struct TopicPropertyTests {
    private static func topic(_ levels: [String]) -> String { levels.joined(separator: "/") }

    @Test func everyTopicIsValidAndMatchesItselfAsAFilter() async {
        await propertyCheck(count: 300, input: TopicGenerators.levels) { levels in
            recordingErrors {
                let topic = Self.topic(levels)
                // Guards the generator: every other property assumes valid topics.
                #expect(TopicGrammar.grammarError(Array(topic.utf8)) == nil)
                let filter = try TopicFilter(topic)
                #expect(filter.isExact)
                #expect(filter.levels.count == levels.count)
                #expect(filter.matches(topic))
            }
        }
    }

    @Test func hashMatchesExactlyTheNonReservedTopics() async throws {
        let everything = try TopicFilter("#")
        await propertyCheck(count: 300, input: TopicGenerators.levels) { levels in
            let topic = Self.topic(levels)
            #expect(everything.matches(topic) == !topic.hasPrefix("$"), "\(topic)")
        }
    }

    @Test func replacingOneLevelByPlusStillMatches() async {
        await propertyCheck(count: 300, input: TopicGenerators.levels, Gen.int(in: 0...5)) { levels, pick in
            recordingErrors {
                let index = pick % levels.count
                var filterLevels = levels
                filterLevels[index] = "+"
                let topic = Self.topic(levels)
                // The one exception: a leading wildcard never matches a `$` topic.
                let expected = !(index == 0 && topic.hasPrefix("$"))
                let filter = try TopicFilter(Self.topic(filterLevels))
                #expect(filter.matches(topic) == expected, "\(filter) vs \(topic)")
            }
        }
    }

    @Test func parentHashFilterMatchesTheParentAndItsChildren() async {
        await propertyCheck(count: 300, input: TopicGenerators.levels, TopicGenerators.level) { levels, child in
            recordingErrors {
                let parent = Self.topic(levels)
                let filter = try TopicFilter(parent + "/#")
                #expect(filter.matches(parent), "\(filter) vs \(parent)")
                #expect(filter.matches(parent + "/" + child), "\(filter) vs \(parent)/\(child)")
                if levels.count > 1 {
                    #expect(!filter.matches(Self.topic(levels.dropLast())), "\(filter) matched the grandparent")
                }
            }
        }
    }

    /// Filters built from a topic's own levels, some replaced by `+`, of any length, maybe
    /// ending in `#`: a filter without `#` matches only topics with as many levels.
    @Test func levelCountDecidesMatchesOfWildcardFilters() async {
        await propertyCheck(
            count: 500, input: TopicGenerators.levels, Gen.int(in: 1...6), Gen.bool.array(of: 6), Gen.bool
        ) { topicLevels, filterLength, wildcards, endsInHash in
            recordingErrors {
                var filterLevels = (0..<filterLength).map { index in
                    wildcards[index] ? "+" : (index < topicLevels.count ? topicLevels[index] : "x")
                }
                if endsInHash { filterLevels.append("#") }
                let topic = Self.topic(topicLevels)
                let filter = try TopicFilter(Self.topic(filterLevels))
                let dollarBlocked = topic.hasPrefix("$") && wildcards[0]
                let sameOrMoreLevels =
                    endsInHash ? topicLevels.count >= filterLength : topicLevels.count == filterLength
                #expect(filter.matches(topic) == (sameOrMoreLevels && !dollarBlocked), "\(filter) vs \(topic)")
            }
        }
    }
}
