import HeraldProtocol

/// Builds the ``Frame`` a vector's `frame` object describes (schema in Protocol/vectors/README.md).
enum FrameMeaning {
    static func frame(from value: JSONValue, context: String) throws(FixtureError) -> Frame {
        var fields = try JSONFields(value, context: context)
        let typeName = try fields.string("type")
        guard let type = ProtocolNames.frameType(named: typeName) else {
            throw FixtureError("\(context): unknown frame type \"\(typeName)\"")
        }
        let frame: Frame
        switch type {
        case .hello:
            frame = .hello(
                Hello(
                    minVersion: try fields.integer("min_version"), maxVersion: try fields.integer("max_version"),
                    slowConsumerPolicy: try requestedPolicy(&fields, context: context),
                    outputLimit: try fields.integer("output_limit"), capabilities: try fields.integer("capabilities"),
                    clientName: try fields.string("client_name")))
        case .welcome:
            frame = .welcome(
                Welcome(
                    version: try fields.integer("version"), peerID: try fields.u64("peer_id"),
                    credentials: PeerCredentials(
                        pid: try fields.integer("client_pid"), uid: try fields.integer("client_uid"),
                        gid: try fields.integer("client_gid")),
                    brokerPID: try fields.integer("broker_pid"), brokerUID: try fields.integer("broker_uid"),
                    maxFrameSize: try fields.integer("max_frame_size"),
                    maxTopicLength: try fields.integer("max_topic_length"),
                    maxSubscriptions: try fields.integer("max_subscriptions"),
                    outputLimit: try fields.integer("output_limit"),
                    slowConsumerPolicy: try policy(&fields, context: context),
                    serverName: try fields.string("server_name"), capabilities: try fields.integer("capabilities")))
        case .error:
            let code: UInt16 = try fields.integer("code")
            try checkCodeName(try fields.optionalString("code_name"), code: code, context: context)
            frame = .error(
                ErrorFrame(
                    code: code, isFatal: try fields.bool("fatal"), requestID: try fields.integer("request_id"),
                    message: try fields.string("message")))
        case .ping:
            frame = .ping(token: try fields.u64("token"))
        case .pong:
            frame = .pong(token: try fields.u64("token"))
        case .goodbye:
            let reason: UInt16 = try fields.integer("reason")
            try checkCodeName(try fields.optionalString("reason_name"), code: reason, context: context)
            frame = .goodbye(Goodbye(reason: reason, message: try fields.string("message")))
        case .ok:
            frame = .ok(requestID: try fields.integer("request_id"))
        case .subscribe:
            // `responder` (flag 0x01) and `monitor` (0x02) may be left out: false.
            let responder: Bool = fields.has("responder") ? try fields.bool("responder") : false
            let monitor: Bool = fields.has("monitor") ? try fields.bool("monitor") : false
            frame = .subscribe(
                Subscribe(
                    requestID: try fields.integer("request_id"), subscriptionID: try fields.integer("subscription_id"),
                    filter: try fields.string("filter"), responder: responder, monitor: monitor))
        case .unsubscribe:
            frame = .unsubscribe(
                Unsubscribe(
                    requestID: try fields.integer("request_id"), subscriptionID: try fields.integer("subscription_id")))
        case .publish:
            var publish = Publish(
                topic: try topic(&fields, context: context), payload: try fields.hexBytes("payload_hex"),
                retain: try fields.bool("retain"))
            publish.descriptors = try descriptors(&fields)
            frame = .publish(publish)
        case .message, .direct:
            var delivery = Delivery(
                    senderID: try fields.u64("sender_id"),
                    sender: PeerCredentials(
                        pid: try fields.integer("sender_pid"), uid: try fields.integer("sender_uid"),
                        gid: try fields.integer("sender_gid")),
                    topic: try topic(&fields, context: context), payload: try fields.hexBytes("payload_hex"))
            delivery.descriptors = try descriptors(&fields)
            frame = type == .direct ? .direct(delivery) : .message(delivery)
        case .dropped:
            frame = .dropped(DropNotice(messages: try fields.u64("messages"), bytes: try fields.u64("bytes")))
        case .retained:
            frame = .retained(
                RetainedDelivery(
                    subscriptionID: try fields.integer("subscription_id"), retainedAt: try fields.u64("retained_at"),
                    senderID: try fields.u64("sender_id"),
                    sender: PeerCredentials(
                        pid: try fields.integer("sender_pid"), uid: try fields.integer("sender_uid"),
                        gid: try fields.integer("sender_gid")),
                    topic: try topic(&fields, context: context), payload: try fields.hexBytes("payload_hex")))
        case .request:
            frame = .request(
                Request(
                    requestID: try fields.integer("request_id"), timeoutMilliseconds: try fields.integer("timeout_ms"),
                    topic: try topic(&fields, context: context), payload: try fields.hexBytes("payload_hex")))
        case .call:
            frame = .call(
                Call(
                    senderID: try fields.u64("sender_id"),
                    sender: PeerCredentials(
                        pid: try fields.integer("sender_pid"), uid: try fields.integer("sender_uid"),
                        gid: try fields.integer("sender_gid")),
                    callID: try fields.integer("call_id"), subscriptionID: try fields.integer("subscription_id"),
                    topic: try topic(&fields, context: context), payload: try fields.hexBytes("payload_hex")))
        case .reply:
            frame = .reply(
                Reply(callID: try fields.integer("call_id"), status: try fields.integer("status"), payload: try fields.hexBytes("payload_hex")))
        case .monitored:
            let kindName = try fields.string("kind")
            guard let kind = Monitored.Kind.allCases.first(where: { "\($0)" == kindName }) else {
                throw FixtureError("\(context): unknown monitored kind \"\(kindName)\"")
            }
            frame = .monitored(
                Monitored(
                    senderID: try fields.u64("sender_id"),
                    sender: PeerCredentials(
                        pid: try fields.integer("sender_pid"), uid: try fields.integer("sender_uid"),
                        gid: try fields.integer("sender_gid")),
                    kind: kind, subscriptionID: try fields.integer("subscription_id"), target: try fields.u64("target"),
                    callID: try fields.integer("call_id"), status: try fields.integer("status"),
                    topic: try topic(&fields, context: context), payload: try fields.hexBytes("payload_hex")))
        case .will:
            frame = .will(
                Will(
                    requestID: try fields.integer("request_id"), topic: try topic(&fields, context: context),
                    payload: try fields.hexBytes("payload_hex"), retain: try fields.bool("retain")))
        case .send:
            frame = .send(
                Send(
                    requestID: try fields.integer("request_id"), target: try fields.u64("target"),
                    topic: try topic(&fields, context: context), payload: try fields.hexBytes("payload_hex")))
        case .response:
            frame = .response(
                Response(
                    senderID: try fields.u64("sender_id"),
                    sender: PeerCredentials(
                        pid: try fields.integer("sender_pid"), uid: try fields.integer("sender_uid"),
                        gid: try fields.integer("sender_gid")),
                    requestID: try fields.integer("request_id"), status: try fields.integer("status"),
                    payload: try fields.hexBytes("payload_hex")))
        }
        try fields.finish()
        return frame
    }

    private static func policy(_ fields: inout JSONFields, context: String) throws(FixtureError)
        -> SlowConsumerPolicy
    {
        let name = try fields.string("slow_consumer_policy")
        guard let policy = ProtocolNames.policy(named: name) else {
            throw FixtureError("\(context): unknown slow-consumer policy \"\(name)\"")
        }
        return policy
    }

    /// HELLO's policy: a policy name, or `broker_default` (nil, 0xFF on the wire).
    private static func requestedPolicy(_ fields: inout JSONFields, context: String) throws(FixtureError)
        -> SlowConsumerPolicy?
    {
        guard case .string(ProtocolNames.brokerDefaultPolicy) = fields.optionalValue("slow_consumer_policy") else {
            return try policy(&fields, context: context)
        }
        return nil
    }

    /// `topic` (text) or `topic_hex` (bytes that need not be UTF-8), exactly one of them.
    /// The descriptor fields of a frame with flag 0x80 (PROTOCOL.md §4.22): `fd_count`, and
    /// optionally `fd_withheld` and `fd_sealed_payload`; nil when the vector has no `fd_count`.
    private static func descriptors(_ fields: inout JSONFields) throws(FixtureError) -> DescriptorBlock? {
        guard fields.has("fd_count") else { return nil }
        let count: UInt8 = try fields.integer("fd_count")
        let withheld: UInt8 = fields.has("fd_withheld") ? try fields.integer("fd_withheld") : 0
        let sealed = fields.has("fd_sealed_payload") ? try fields.bool("fd_sealed_payload") : false
        return DescriptorBlock(count: count, withheld: withheld, sealedPayload: sealed)
    }

    private static func topic(_ fields: inout JSONFields, context: String) throws(FixtureError) -> [UInt8] {
        switch (fields.has("topic"), fields.has("topic_hex")) {
        case (true, false): Array(try fields.string("topic").utf8)
        case (false, true): try fields.hexBytes("topic_hex")
        default: throw FixtureError("\(context): needs exactly one of \"topic\" and \"topic_hex\"")
        }
    }

    /// The informative name next to a code must be the one the spec gives that code.
    private static func checkCodeName(_ name: String?, code: UInt16, context: String) throws(FixtureError) {
        guard let name else { return }
        guard let known = ErrorCode(rawValue: code), ProtocolNames.name(of: known) == name else {
            throw FixtureError("\(context): code \(code) is not named \"\(name)\"")
        }
    }
}
