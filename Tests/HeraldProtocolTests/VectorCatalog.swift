import Foundation

/// The vector files under Protocol/vectors.
enum VectorCatalog {
    /// The topic grammar file, which has its own schema.
    static let topicsFile = "topics.json"
    /// Broker behaviour cases (state, bytes, the ERROR to send): run by the broker and integration tests.
    static let brokerFile = "broker.json"

    /// Every frame vector file, sorted; empty if the directory is missing (a test checks that).
    static let frameFiles: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: RepositoryPaths.vectors.path)) ?? []
        return names.filter { $0.hasSuffix(".json") && $0 != topicsFile && $0 != brokerFile }.sorted()
    }()

    static func json(_ file: String) throws -> JSONValue {
        let data = try Data(contentsOf: RepositoryPaths.vectors.appendingPathComponent(file))
        return try JSONDecoder().decode(JSONValue.self, from: data)
    }

    /// The vectors of one frame file.
    static func vectors(in file: String) throws -> [FrameVector] {
        var fields = try JSONFields(try json(file), context: file)
        guard !(try fields.string("description")).isEmpty else { throw FixtureError("\(file): empty description") }
        guard case .array(let entries) = try fields.value("vectors") else {
            throw FixtureError("\(file): \"vectors\" must be an array")
        }
        try fields.finish()
        return try entries.enumerated().map { index, entry in try FrameVector(entry, file: file, index: index) }
    }

    /// The vectors of every frame file.
    static func allVectors() throws -> [FrameVector] {
        try frameFiles.flatMap { try vectors(in: $0) }
    }
}
