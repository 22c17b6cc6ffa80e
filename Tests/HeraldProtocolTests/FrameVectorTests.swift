import Foundation
import HeraldProtocol
import Testing

/// Checks the decoder and encoder against every vector in Protocol/vectors.
@Suite struct FrameVectorTests {
    /// Guards the parameterized test below, which would pass vacuously with no files.
    @Test func vectorFilesExistAndCoverTheProtocol() throws {
        try #require(!VectorCatalog.frameFiles.isEmpty, "no vector files in \(RepositoryPaths.vectors.path)")
        #expect(
            FileManager.default.fileExists(
                atPath: RepositoryPaths.vectors.appendingPathComponent(VectorCatalog.topicsFile).path))

        var names = Set<String>()
        var validTypes = Set<FrameType>()
        var errorNames = Set<String>()
        var incompleteCount = 0
        for file in VectorCatalog.frameFiles {
            let vectors = try VectorCatalog.vectors(in: file)
            #expect(!vectors.isEmpty, "\(file) has no vectors")
            for vector in vectors {
                #expect(names.insert(vector.name).inserted, "vector name \(vector.name) is used twice")
                switch vector.expectation {
                case .frames(let frames): validTypes.formUnion(frames.map(\.type))
                case .error(let name, _): errorNames.insert(name)
                case .incomplete: incompleteCount += 1
                }
            }
        }
        #expect(validTypes == Set(FrameType.allCases), "frame types without a valid vector")
        #expect(errorNames == ProtocolNames.decodingErrorNames, "decoding errors without a vector")
        #expect(incompleteCount > 0)
    }

    @Test(arguments: VectorCatalog.frameFiles)
    func vectorsDecodeAndReencode(file: String) throws {
        let vectors = try VectorCatalog.vectors(in: file)
        try #require(!vectors.isEmpty)
        for vector in vectors {
            switch vector.expectation {
            case .frames(let expected): checkFrames(vector, expected: expected)
            case .error(let name, let detail): checkError(vector, name: name, detail: detail)
            case .incomplete: checkIncomplete(vector)
            }
        }
    }

    private func checkFrames(_ vector: FrameVector, expected: [Frame]) {
        guard let decoded = decodeAll(vector.bytes, maxFrameSize: vector.maxFrameSize, vector: vector) else { return }
        #expect(decoded == expected, "\(vector)")
        let encoded = expected.flatMap { FrameEncoder.encode($0) }
        #expect(Hex.string(encoded) == Hex.string(vector.canonicalBytes), "\(vector): re-encoding differs")
        if vector.canonicalBytes != vector.bytes {
            // The canonical form must mean the same thing as the bytes with non-zero reserved fields.
            #expect(decodeAll(vector.canonicalBytes, maxFrameSize: vector.maxFrameSize, vector: vector) == expected)
        }
    }

    /// Decodes back-to-back frames filling `bytes` exactly; records an issue and returns nil otherwise.
    private func decodeAll(_ bytes: [UInt8], maxFrameSize: Int, vector: FrameVector) -> [Frame]? {
        var frames: [Frame] = []
        var offset = 0
        while offset < bytes.count {
            do {
                guard let (frame, length) = try FrameDecoder.decode(Array(bytes[offset...]), maxFrameSize: maxFrameSize)
                else {
                    Issue.record("\(vector): incomplete at offset \(offset)")
                    return nil
                }
                frames.append(frame)
                offset += length
            } catch {
                Issue.record("\(vector): \(error)")
                return nil
            }
        }
        return frames
    }

    private func checkError(_ vector: FrameVector, name: String, detail: [String: JSONValue]?) {
        do {
            let result = try FrameDecoder.decode(vector.bytes, maxFrameSize: vector.maxFrameSize)
            Issue.record("\(vector): expected \(name), got \(String(describing: result))")
        } catch {
            let actual = ProtocolNames.describe(error)
            #expect(actual.name == name, "\(vector): \(error)")
            if let detail { #expect(actual.detail == detail, "\(vector)") }
        }
    }

    private func checkIncomplete(_ vector: FrameVector) {
        do {
            let result = try FrameDecoder.decode(vector.bytes, maxFrameSize: vector.maxFrameSize)
            #expect(result == nil, "\(vector): decoded \(String(describing: result))")
        } catch {
            Issue.record("\(vector): expected to wait for more bytes, got \(error)")
        }
    }
}
