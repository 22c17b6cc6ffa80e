import HeraldProtocol
import PropertyBased
import Testing

/// decode(encode(frame)) is the identity, for random frames of every type.
@Suite struct FrameRoundTripPropertyTests {
    /// Checks one frame; the byte comparison also catches changes that `String`'s
    /// canonical-equivalence `==` would hide.
    private static func roundTrip(_ frame: Frame) {
        let encoded = FrameEncoder.encode(frame)
        #expect(
            Int(encoded.prefix(4).reversed().reduce(0) { $0 << 8 | UInt32($1) }) == encoded.count - FrameHeader.size)
        #expect(encoded[4] == frame.type.rawValue)
        do {
            let decoded = try FrameDecoder.decode(encoded)
            #expect(decoded?.frame == frame)
            #expect(decoded?.length == encoded.count)
            if let decoded { #expect(FrameEncoder.encode(decoded.frame) == encoded) }
        } catch {
            Issue.record("\(frame) failed to decode: \(error)")
        }
    }

    @Test func publish() async {
        await propertyCheck(count: 300, input: FrameGenerators.publish) { Self.roundTrip($0) }
    }

    @Test func subscribe() async {
        await propertyCheck(count: 300, input: FrameGenerators.subscribe) { Self.roundTrip($0) }
    }

    @Test func error() async {
        await propertyCheck(count: 300, input: FrameGenerators.error) { Self.roundTrip($0) }
    }

    @Test func hello() async {
        await propertyCheck(count: 300, input: FrameGenerators.hello) { Self.roundTrip($0) }
    }

    @Test func anyFrameType() async {
        await propertyCheck(count: 500, input: FrameGenerators.any) { Self.roundTrip($0) }
    }

    /// A stream of frames decodes frame by frame, each consuming exactly its own bytes.
    @Test func concatenatedFramesDecodeInOrder() async {
        await propertyCheck(count: 200, input: FrameGenerators.any.array(of: 1...5)) { frames in
            recordingErrors {
                let stream = frames.flatMap { FrameEncoder.encode($0) }
                var decoded: [Frame] = []
                var offset = 0
                while offset < stream.count, let (frame, length) = try FrameDecoder.decode(Array(stream[offset...])) {
                    decoded.append(frame)
                    offset += length
                }
                #expect(decoded == frames)
                #expect(offset == stream.count)
            }
        }
    }

    /// The client's allocation-free PUBLISH path writes the same bytes as the general encoder.
    @Test func appendPublishMatchesEncode() async {
        await propertyCheck(count: 200, input: FrameGenerators.bytes(0...300), FrameGenerators.bytes(0...300)) {
            topic, payload in
            var fast: [UInt8] = [0xAA]  // appends after existing content
            topic.withUnsafeBytes { topicBytes in
                payload.withUnsafeBytes { payloadBytes in
                    FrameEncoder.appendPublish(topic: topicBytes, payload: payloadBytes, into: &fast)
                }
            }
            #expect(fast == [0xAA] + FrameEncoder.encode(.publish(Publish(topic: topic, payload: payload))))
        }
    }
}
