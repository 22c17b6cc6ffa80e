import Benchmark
import HeraldProtocol

// The wire codec (HeraldProtocol), one frame or topic per inner iteration: with the `.kilo`
// scaling factor every figure reads per frame. The broker's own hot path uses only
// FrameHeader(loadingFrom:) and the topic checks; FrameEncoder/FrameDecoder are what
// clients (and the broker's control replies) pay.

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        timeUnits: .nanoseconds,
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 5_000
    )

    let topic = "home/livingroom/sensor-3/temperature"  // 36 bytes, four levels
    let payload = [UInt8](repeating: 0x5A, count: 64)
    let publish = Frame.publish(Publish(topic: topic, payload: payload))
    let message = Frame.message(
        Delivery(senderID: 42, sender: PeerCredentials(pid: 1234, uid: 1000, gid: 1000), topic: Array(topic.utf8),
            payload: payload))
    let topicBytes = Array(topic.utf8)
    let publishBytes = FrameEncoder.encode(publish)
    let messageBytes = FrameEncoder.encode(message)

    Benchmark("FrameEncoder.encode(.publish) 64 B", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(FrameEncoder.encode(publish))
        }
    }

    Benchmark("FrameEncoder.appendPublish 64 B, reused buffer", configuration: configuration) { benchmark in
        var buffer: [UInt8] = []
        buffer.reserveCapacity(256)
        topicBytes.withUnsafeBytes { topic in
            payload.withUnsafeBytes { payload in
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    buffer.removeAll(keepingCapacity: true)
                    FrameEncoder.appendPublish(topic: topic, payload: payload, into: &buffer)
                    blackHole(buffer.count)
                }
                benchmark.stopMeasurement()
            }
        }
    }

    Benchmark("FrameDecoder.decode PUBLISH 64 B", configuration: configuration) { benchmark in
        publishBytes.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations {
                blackHole(try! FrameDecoder.decode(bytes))
            }
        }
    }

    Benchmark("FrameDecoder.decode MESSAGE 64 B", configuration: configuration) { benchmark in
        messageBytes.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations {
                blackHole(try! FrameDecoder.decode(bytes))
            }
        }
    }

    // Walks 1,000 PUBLISH frames laid back to back, as the broker's frame loop does.
    Benchmark("FrameHeader(loadingFrom:) walking a read batch", configuration: configuration) { benchmark in
        var batch: [UInt8] = []
        for _ in benchmark.scaledIterations { batch += publishBytes }
        batch.withUnsafeBytes { bytes in
            benchmark.startMeasurement()
            var offset = 0
            for _ in benchmark.scaledIterations {
                let header = FrameHeader(loadingFrom: bytes.baseAddress! + offset)
                blackHole(header.type)
                offset += header.frameLength
            }
            blackHole(offset)
            benchmark.stopMeasurement()
        }
    }

    Benchmark("Topic.validatePublishable 36 B topic", configuration: configuration) { benchmark in
        topicBytes.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations {
                blackHole(Topic.validatePublishable(bytes, maxLength: ProtocolLimits.defaultMaxTopicLength))
            }
        }
    }

    // 64 bytes of ASCII, and 64 bytes mixing 2-, 3- and 4-byte sequences.
    let utf8Inputs: [(name: String, bytes: [UInt8])] = [
        ("ASCII", Array(String(repeating: "sensor/42/", count: 7).utf8.prefix(64))),
        ("mixed", Array((String(repeating: "é€😀ab", count: 5) + "é€abcd").utf8)),
    ]
    for input in utf8Inputs {
        precondition(input.bytes.count == 64 && input.bytes.withUnsafeBytes(UTF8Validation.isValid))
        Benchmark("UTF8Validation.isValid 64 B \(input.name)", configuration: configuration) { benchmark in
            input.bytes.withUnsafeBytes { bytes in
                for _ in benchmark.scaledIterations {
                    blackHole(UTF8Validation.isValid(bytes))
                }
            }
        }
    }
}
