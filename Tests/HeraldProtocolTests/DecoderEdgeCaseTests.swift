import HeraldProtocol
import PropertyBased
import Testing

/// How the decoder behaves on partial, oversized and arbitrary input.
@Suite struct DecoderEdgeCaseTests {
    private static func headerBytes(bodyLength: Int, type: UInt8, flags: UInt8 = 0, aux: UInt16 = 0) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: FrameHeader.size)
        let header = FrameHeader(bodyLength: UInt32(bodyLength), type: type, flags: flags, aux: aux)
        bytes.withUnsafeMutableBytes { header.store(to: $0.baseAddress!) }
        return bytes
    }

    /// The frame length announced by the header at the start of `bytes`; nil before 8 bytes.
    private static func announcedLength(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= FrameHeader.size else { return nil }
        return bytes.withUnsafeBytes { FrameHeader(loadingFrom: $0.baseAddress!).frameLength }
    }

    /// nil (not an error) for every strict prefix of the first frame in `bytes`.
    private static func checkPrefixesAreIncomplete(_ bytes: [UInt8], maxFrameSize: Int, label: String) {
        let frameLength = min(announcedLength(bytes) ?? bytes.count, bytes.count)
        bytes.withUnsafeBytes { raw in
            for length in 0..<frameLength {
                do {
                    let prefix = UnsafeRawBufferPointer(rebasing: raw[..<length])
                    let result = try FrameDecoder.decode(prefix, maxFrameSize: maxFrameSize)
                    #expect(result == nil, "\(label): prefix of \(length) bytes decoded")
                } catch {
                    Issue.record("\(label): prefix of \(length) bytes threw \(error)")
                }
            }
        }
    }

    @Test func everyPrefixOfAVectorFrameIsIncomplete() throws {
        var checked = 0
        for vector in try VectorCatalog.allVectors() {
            guard case .frames = vector.expectation else { continue }
            Self.checkPrefixesAreIncomplete(vector.bytes, maxFrameSize: vector.maxFrameSize, label: vector.description)
            checked += 1
        }
        #expect(checked > 0)
    }

    @Test func everyPrefixOfARandomFrameIsIncomplete() async {
        await propertyCheck(count: 200, input: FrameGenerators.any) { frame in
            let bytes = FrameEncoder.encode(frame)
            Self.checkPrefixesAreIncomplete(bytes, maxFrameSize: ProtocolLimits.maxFrameSizeCeiling, label: "\(frame)")
        }
    }

    /// The 8 header bytes alone are enough to refuse a frame over the limit (plus the
    /// allowance for MESSAGE, RETAINED, CALL and RESPONSE), and a frame at the limit waits for its body.
    @Test func headerAloneDecidesTheSizeLimit() async {
        let maxFrameSizes = Gen.int(in: FrameHeader.size...ProtocolLimits.maxFrameSizeCeiling)
        await propertyCheck(count: 500, input: Gen<FrameType>.case, maxFrameSizes, Gen.int(in: 1...100_000)) {
            type, maxFrameSize, excess in
            let limit =
                maxFrameSize
                + (type == .message || type == .direct
                    ? ProtocolLimits.messageSenderBlockSize
                    : type == .retained ? ProtocolLimits.retainedPrefixSize
                    : type == .call || type == .response ? ProtocolLimits.callAllowance
                    : type == .monitored ? ProtocolLimits.monitoredAllowance : 0)
            let over = Self.headerBytes(bodyLength: limit + excess - FrameHeader.size, type: type.rawValue)
            #expect(throws: FrameDecodingError.frameTooLarge(length: limit + excess, maximum: limit)) {
                try FrameDecoder.decode(over, maxFrameSize: maxFrameSize)
            }
            recordingErrors {
                let atLimit = Self.headerBytes(bodyLength: limit - FrameHeader.size, type: type.rawValue)
                let result = try FrameDecoder.decode(atLimit, maxFrameSize: maxFrameSize)
                #expect(result == nil)
            }
        }
    }

    @Test func headerAloneRefusesUnknownTypes() {
        let known = Set(FrameType.allCases.map(\.rawValue))
        for type in UInt8.min...UInt8.max where !known.contains(type) {
            // A huge length too: the type is judged first.
            let header = Self.headerBytes(bodyLength: Int(UInt32.max), type: type)
            #expect(throws: FrameDecodingError.unknownType(type)) { try FrameDecoder.decode(header) }
        }
        #expect(known.count == FrameType.allCases.count)
    }

    /// Whatever the decoder makes of arbitrary bytes, it must not crash (a crash ends the
    /// test run); a frame it accepts must span exactly what its header announces and must
    /// survive a re-encode. Rejections are fine: typed throws guarantee their type.
    private static func checkArbitrary(_ bytes: [UInt8]) {
        let decoded: (frame: Frame, length: Int)?
        do {
            decoded = try FrameDecoder.decode(bytes)
        } catch {
            return
        }
        guard let (frame, length) = decoded else {
            #expect((announcedLength(bytes) ?? Int.max) > bytes.count, "incomplete? \(Hex.string(bytes))")
            return
        }
        #expect(length == announcedLength(bytes) && length <= bytes.count, "\(Hex.string(bytes))")
        recordingErrors {
            let again = try FrameDecoder.decode(FrameEncoder.encode(frame))
            #expect(again?.frame == frame, "\(Hex.string(bytes))")
        }
    }

    @Test func randomBytesNeverCrashTheDecoder() async {
        await propertyCheck(count: 2000, input: FrameGenerators.bytes(0...64)) { Self.checkArbitrary($0) }
    }

    /// Random bodies behind plausible headers, so the body decoders are reached too.
    @Test func randomBodiesNeverCrashTheDecoder() async {
        let types = FrameType.allCases.map(\.rawValue) + [0x00, 0x0A, 0x14, 0xFF]
        let input = zip(
            Gen<UInt8?>.element(of: types).map { $0! },
            Gen<UInt8>.frequency((weight: 4, gen: Gen.always(0)), (weight: 1, gen: Gen.uint8())),
            Gen<UInt16>.frequency((weight: 2, gen: Gen.always(0)), (weight: 1, gen: Gen.uint16(in: 0...80))),
            FrameGenerators.bytes(0...80), Gen.bool, Gen.int(in: -2...2)
        )
        await propertyCheck(count: 5000, input: input) { type, flags, aux, body, addMagic, lengthSkew in
            // HELLO bodies only get past the magic check if they start with it.
            let body = addMagic && type == FrameType.hello.rawValue ? Array("HRLD".utf8) + body : body
            // Mostly the true length, sometimes a little off to hit truncation and trailing bytes.
            let header = Self.headerBytes(
                bodyLength: max(0, body.count + lengthSkew), type: type, flags: flags, aux: aux)
            Self.checkArbitrary(header + body)
        }
    }
}
