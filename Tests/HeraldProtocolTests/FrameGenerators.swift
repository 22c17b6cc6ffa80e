import HeraldProtocol
import PropertyBased

/// Random frames for property tests, kept inside what the encoder represents faithfully
/// (names ≤ 255 bytes, messages ≤ 1024 bytes, topics ≤ 65535 bytes).
enum FrameGenerators {
    /// Generators are type-erased: their exact types are unwieldy and opaque ones cannot be stored.
    typealias FrameGenerator = Generator<Frame, AnySequence<Any>>

    /// Any Unicode scalar: the range is shifted over the surrogates, which are not scalars.
    static let scalar = Gen.uint32(in: 0...0x10_F7FF).map { Unicode.Scalar($0 < 0xD800 ? $0 : $0 + 0x800)! }

    /// Text of `count` scalars of up to 4 UTF-8 bytes each.
    static func text(scalars count: ClosedRange<Int>) -> Generator<String, AnySequence<[UInt32]>> {
        scalar.array(of: count).map { scalars in
            var text = ""
            text.unicodeScalars.append(contentsOf: scalars)
            return text
        }.eraseToAnySequence()
    }

    static func bytes(_ count: ClosedRange<Int>) -> Generator<[UInt8], AnySequence<[UInt8]>> {
        Gen.uint8().array(of: count).eraseToAnySequence()
    }

    static let credentials = zip(Gen.uint32(), Gen.uint32(), Gen.uint32()).map {
        PeerCredentials(pid: $0.0, uid: $0.1, gid: $0.2)
    }

    static let hello: FrameGenerator = zip(
        Gen.uint16(), Gen.uint16(), Gen<SlowConsumerPolicy>.case.optional, Gen.uint32(), Gen.uint32(),
        text(scalars: 0...63)
    ).map { value in
        Frame.hello(
            Hello(
                minVersion: value.0, maxVersion: value.1, slowConsumerPolicy: value.2, outputLimit: value.3,
                capabilities: value.4, clientName: value.5))
    }.eraseToAny()

    static let welcome: FrameGenerator = zip(
        Gen.uint16(), Gen.uint64(), credentials, zip(Gen.uint32(), Gen.uint32()),
        zip(Gen.uint32(), Gen.uint32(), Gen.uint32(), Gen.uint32()), zip(Gen<SlowConsumerPolicy>.case, Gen.uint16()),
        text(scalars: 0...63)
    ).map { value in
        Frame.welcome(
            Welcome(
                version: value.0, peerID: value.1, credentials: value.2, brokerPID: value.3.0, brokerUID: value.3.1,
                maxFrameSize: value.4.0, maxTopicLength: value.4.1, maxSubscriptions: value.4.2, outputLimit: value.4.3,
                slowConsumerPolicy: value.5.0, serverName: value.6, capabilities: value.5.1))
    }.eraseToAny()

    static let error: FrameGenerator = zip(Gen.uint16(), Gen.bool, Gen.uint32(), text(scalars: 0...256)).map { value in
        Frame.error(ErrorFrame(code: value.0, isFatal: value.1, requestID: value.2, message: value.3))
    }.eraseToAny()

    static let goodbye: FrameGenerator = zip(Gen.uint16(), text(scalars: 0...256)).map {
        Frame.goodbye(Goodbye(reason: $0.0, message: $0.1))
    }.eraseToAny()

    static let subscribe: FrameGenerator = zip(Gen.uint32(), Gen.uint32(), text(scalars: 0...100), Gen.bool, Gen.bool).map { value in
        Frame.subscribe(Subscribe(requestID: value.0, subscriptionID: value.1, filter: value.2, responder: value.3, monitor: value.4))
    }.eraseToAny()

    static let unsubscribe: FrameGenerator = zip(Gen.uint32(), Gen.uint32()).map {
        Frame.unsubscribe(Unsubscribe(requestID: $0.0, subscriptionID: $0.1))
    }.eraseToAny()

    static let publish: FrameGenerator = zip(bytes(0...300), bytes(0...300), Gen.bool).map {
        Frame.publish(Publish(topic: $0.0, payload: $0.1, retain: $0.2))
    }.eraseToAny()

    static let message: FrameGenerator = zip(Gen.uint64(), credentials, bytes(0...300), bytes(0...300)).map { value in
        Frame.message(Delivery(senderID: value.0, sender: value.1, topic: value.2, payload: value.3))
    }.eraseToAny()

    static let ping: FrameGenerator = Gen.uint64().map { Frame.ping(token: $0) }.eraseToAny()
    static let pong: FrameGenerator = Gen.uint64().map { Frame.pong(token: $0) }.eraseToAny()
    static let ok: FrameGenerator = Gen.uint32().map { Frame.ok(requestID: $0) }.eraseToAny()
    static let dropped: FrameGenerator = zip(Gen.uint64(), Gen.uint64()).map {
        Frame.dropped(DropNotice(messages: $0.0, bytes: $0.1))
    }.eraseToAny()

    static let retained: FrameGenerator = zip(zip(Gen.uint32(), Gen.uint64(), Gen.uint64()), credentials, bytes(0...300), bytes(0...300))
        .map { value in
            Frame.retained(
                RetainedDelivery(
                    subscriptionID: value.0.0, retainedAt: value.0.1, senderID: value.0.2, sender: value.1, topic: value.2,
                    payload: value.3))
        }.eraseToAny()

    static let request: FrameGenerator = zip(Gen.uint32(), Gen.uint32(), bytes(0...300), bytes(0...300)).map { value in
        Frame.request(Request(requestID: value.0, timeoutMilliseconds: value.1, topic: value.2, payload: value.3))
    }.eraseToAny()

    static let call: FrameGenerator = zip(zip(Gen.uint64(), Gen.uint32(), Gen.uint32()), credentials, bytes(0...300), bytes(0...300))
        .map { value in
            Frame.call(
                Call(
                    senderID: value.0.0, sender: value.1, callID: value.0.1, subscriptionID: value.0.2, topic: value.2,
                    payload: value.3))
        }.eraseToAny()

    static let reply: FrameGenerator = zip(Gen.uint32(), Gen.uint32(), bytes(0...300)).map {
        Frame.reply(Reply(callID: $0.0, status: $0.1, payload: $0.2))
    }.eraseToAny()

    static let response: FrameGenerator = zip(zip(Gen.uint64(), Gen.uint32(), Gen.uint32()), credentials, bytes(0...300)).map { value in
        Frame.response(Response(senderID: value.0.0, sender: value.1, requestID: value.0.1, status: value.0.2, payload: value.2))
    }.eraseToAny()

    static let send: FrameGenerator = zip(Gen.uint32(), Gen.uint64(), bytes(0...300), bytes(0...300)).map { value in
        Frame.send(Send(requestID: value.0, target: value.1, topic: value.2, payload: value.3))
    }.eraseToAny()

    static let direct: FrameGenerator = zip(Gen.uint64(), credentials, bytes(0...300), bytes(0...300)).map { value in
        Frame.direct(Delivery(senderID: value.0, sender: value.1, topic: value.2, payload: value.3))
    }.eraseToAny()

    static let will: FrameGenerator = zip(Gen.uint32(), bytes(0...300), bytes(0...300), Gen.bool).map {
        Frame.will(Will(requestID: $0.0, topic: $0.1, payload: $0.2, retain: $0.3))
    }.eraseToAny()

    static let monitored: FrameGenerator = zip(
        zip(Gen.uint64(), Gen<Monitored.Kind>.case, Gen.uint32(), Gen.uint64()), credentials, zip(Gen.uint32(), Gen.uint32()),
        bytes(0...300), bytes(0...300)
    ).map { value in
        Frame.monitored(
            Monitored(
                senderID: value.0.0, sender: value.1, kind: value.0.1, subscriptionID: value.0.2, target: value.0.3, callID: value.2.0,
                status: value.2.1, topic: value.3, payload: value.4))
    }.eraseToAny()

    /// Any frame of any type.
    static let any = Gen.oneOf(
        hello, welcome, error, ping, pong, goodbye, ok, subscribe, unsubscribe, publish, message, dropped, retained, request,
        call, reply, response, send, direct, will, monitored)
}
