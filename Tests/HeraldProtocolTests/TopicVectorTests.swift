import HeraldProtocol
import Testing

/// Checks the topic grammar and matching against Protocol/vectors/topics.json.
@Suite struct TopicVectorTests {
    let file: JSONFields
    let maxLength: Int

    init() throws {
        var file = try JSONFields(try VectorCatalog.json(VectorCatalog.topicsFile), context: VectorCatalog.topicsFile)
        _ = try file.string("description")
        maxLength = try file.integer("max_topic_length")
        self.file = file
    }

    /// The non-empty array under `key`.
    private func cases(_ key: String) throws -> [JSONValue] {
        var file = file
        guard case .array(let cases) = try file.value(key), !cases.isEmpty else {
            throw FixtureError("topics.json: \"\(key)\" must be a non-empty array")
        }
        return cases
    }

    @Test func fileHasNoUnknownSections() throws {
        var file = file
        for key in ["topics", "filters", "matches"] { _ = try file.value(key) }
        try file.finish()
    }

    @Test func topicValidity() throws {
        var sawReserved = false
        var sawInvalid = false
        for (index, entry) in try cases("topics").enumerated() {
            var fields = try JSONFields(entry, context: "topics.json topics[\(index)]")
            let bytes: [UInt8] =
                fields.has("topic_hex") ? try fields.hexBytes("topic_hex") : Array(try fields.string("topic").utf8)
            let valid = try fields.bool("valid")
            let publishable = try fields.bool("publishable")
            let expectedError = try fields.optionalString("error")
            _ = try fields.optionalString("description")
            try fields.finish()

            let label = "topics[\(index)] \(Hex.string(bytes.prefix(40)))"
            let grammar = TopicGrammar.grammarError(bytes, maxLength: maxLength)
            let publish = TopicGrammar.publishError(bytes, maxLength: maxLength)
            #expect((grammar == nil) == valid, "\(label): \(String(describing: grammar))")
            #expect((publish == nil) == publishable, "\(label): \(String(describing: publish))")
            #expect(publish.map(ProtocolNames.name(of:)) == expectedError, "\(label)")
            // A well-formed topic that cannot be published is exactly a reserved one.
            if valid && !publishable { #expect(expectedError == "reserved", "\(label)") }
            sawReserved = sawReserved || expectedError == "reserved"
            sawInvalid = sawInvalid || !valid
        }
        #expect(sawReserved && sawInvalid)
    }

    @Test func filterValidity() throws {
        for (index, entry) in try cases("filters").enumerated() {
            var fields = try JSONFields(entry, context: "topics.json filters[\(index)]")
            let text = try fields.string("filter")
            let valid = try fields.bool("valid")
            let expectedError = try fields.optionalString("error")
            _ = try fields.optionalString("description")
            try fields.finish()

            let error = TopicGrammar.filterError(text, maxLength: maxLength)
            #expect((error == nil) == valid, "filters[\(index)] \(text.prefix(40)): \(String(describing: error))")
            #expect(error.map(ProtocolNames.name(of:)) == expectedError, "filters[\(index)] \(text.prefix(40))")
        }
    }

    @Test func matching() throws {
        var outcomes = Set<Bool>()
        for (index, entry) in try cases("matches").enumerated() {
            var fields = try JSONFields(entry, context: "topics.json matches[\(index)]")
            let filterText = try fields.string("filter")
            let topic = try fields.string("topic")
            let expected = try fields.bool("matches")
            _ = try fields.optionalString("description")
            try fields.finish()

            // Match cases only use valid filters and topics, as a broker would.
            #expect(TopicGrammar.grammarError(Array(topic.utf8)) == nil, "matches[\(index)]: topic \(topic)")
            let filter = try TopicFilter(filterText)
            #expect(filter.matches(topic) == expected, "matches[\(index)]: \(filterText) vs \(topic)")
            outcomes.insert(expected)
        }
        #expect(outcomes == [true, false])
    }
}
