import Herald

/// What `herald peers` and `herald stats` share: connect, ask the broker on one of its
/// `$SYS/broker/…` topics, print its JSON as is (`--json`) or as text, close.
enum BrokerQuery {
    /// Runs one query on `topic`; `render` turns the answer into text for people.
    static func run(_ connection: ConnectionOptions, topic: String, json: Bool, render: (Bus) async throws(HeraldError) -> String) async throws {
        let bus = try await connection.connect()
        do {
            if json {
                let answer = try await bus.request(topic, [UInt8]())
                (answer.payload + [0x0A]).withUnsafeBytes { _ = Output(fd: 1).write($0) }
            } else {
                Output(fd: 1).write(try await render(bus))
            }
        } catch {
            await bus.close()
            throw Failure.report(error)
        }
        await bus.close()
    }
}
