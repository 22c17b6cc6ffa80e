import HeraldProtocol

/// One entry of a frame vector file (schema in Protocol/vectors/README.md).
struct FrameVector: CustomStringConvertible {
    enum Expectation {
        /// The bytes hold these frames, back to back, and nothing else.
        case frames([Frame])
        /// Decoding the first frame fails with this error class (and these details, if given).
        case error(name: String, detail: [String: JSONValue]?)
        /// The bytes are a valid start of a frame; the decoder must ask for more.
        case incomplete
    }

    let file: String
    let name: String
    let bytes: [UInt8]
    let expectation: Expectation
    /// What the encoder must produce for `.frames`: `bytes` unless reserved fields were non-zero.
    let canonicalBytes: [UInt8]
    let maxFrameSize: Int
    /// `c2s` or `s2c` in the session file.
    let direction: String?

    var description: String { "\(file): \(name)" }

    init(_ value: JSONValue, file: String, index: Int) throws(FixtureError) {
        // Read the name first so every later complaint can say which vector it is about.
        var probe = try JSONFields(value, context: "\(file) vector #\(index)")
        name = try probe.string("name")
        let context = "\(file): \(name)"
        var fields = try JSONFields(value, context: context)
        _ = try fields.string("name")
        guard !(try fields.string("description")).isEmpty else {
            throw FixtureError("\(context): empty description")
        }
        self.file = file
        bytes = try fields.hexBytes("hex")
        maxFrameSize =
            fields.has("max_frame_size") ? try fields.integer("max_frame_size") : ProtocolLimits.defaultMaxFrameSize
        direction = try fields.optionalString("direction")
        if let direction, direction != "c2s" && direction != "s2c" {
            throw FixtureError("\(context): direction must be c2s or s2c")
        }

        switch (fields.has("frame"), fields.has("error"), fields.has("incomplete")) {
        case (true, false, false):
            var frames = [try FrameMeaning.frame(from: try fields.value("frame"), context: context)]
            if let then = fields.optionalValue("then") {
                guard case .array(let more) = then, !more.isEmpty else {
                    throw FixtureError("\(context): \"then\" must be a non-empty array")
                }
                for (position, meaning) in more.enumerated() {
                    frames.append(try FrameMeaning.frame(from: meaning, context: "\(context) then[\(position)]"))
                }
            }
            expectation = .frames(frames)
            canonicalBytes = fields.has("canonical_hex") ? try fields.hexBytes("canonical_hex") : bytes
        case (false, true, false):
            let errorName = try fields.string("error")
            guard ProtocolNames.decodingErrorNames.contains(errorName) else {
                throw FixtureError("\(context): unknown error class \"\(errorName)\"")
            }
            var detail: [String: JSONValue]?
            if let value = fields.optionalValue("error_detail") {
                guard case .object(let object) = value else {
                    throw FixtureError("\(context): \"error_detail\" must be an object")
                }
                detail = object
            }
            expectation = .error(name: errorName, detail: detail)
            canonicalBytes = bytes
        case (false, false, true):
            guard try fields.bool("incomplete") else {
                throw FixtureError("\(context): \"incomplete\" must be true")
            }
            expectation = .incomplete
            canonicalBytes = bytes
        default:
            throw FixtureError("\(context): needs exactly one of \"frame\", \"error\", \"incomplete\"")
        }
        try fields.finish()
    }
}
