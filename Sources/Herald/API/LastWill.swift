/// A message the broker publishes for a bus that goes away without saying goodbye (its
/// process crashed or was killed, its connection broke): "last will", as in MQTT.
///
/// ```swift
/// let bus = try await Bus.connect(options: BusOptions(
///     lastWill: LastWill(topic: "power/service/state", payload: Array("offline".utf8), retain: true)))
/// try await bus.publish("power/service/state", "online", retain: true)
/// ```
///
/// Set with ``BusOptions/lastWill``: the bus hands it to the broker right after connecting,
/// and again after every reconnect. ``Bus/close()`` says goodbye, so the will is not
/// published then. The broker checks it as a publish (topic, policy) when it is set, and
/// again when it fires; a will it refuses is reported by ``Bus/flush()`` and as
/// ``BusEvent/publishFailed(_:)``.
public struct LastWill: Sendable, Equatable {
    /// The topic to publish on (no wildcards, no leading `$`).
    public var topic: String
    /// The message.
    public var payload: [UInt8]
    /// Whether it is published retained (it then becomes the topic's current value).
    public var retain: Bool

    /// Creates a last will.
    public init(topic: String, payload: [UInt8], retain: Bool = false) {
        self.topic = topic
        self.payload = payload
        self.retain = retain
    }

    /// Creates a last will whose payload is the UTF-8 of `text`.
    public init(topic: String, _ text: String, retain: Bool = false) {
        self.init(topic: topic, payload: Array(text.utf8), retain: retain)
    }
}
