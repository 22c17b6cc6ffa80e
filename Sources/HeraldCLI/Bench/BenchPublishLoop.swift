import Herald

extension WorkerChannel {
    /// The publishing loop of every bench publisher (W1–W6 workers and L1): stamps each
    /// message with its sequence number, and every 16th with the time it is sent (a clock
    /// read per message would show in the profile), publishes it, and reports progress every
    /// 4,096 messages (a relaxed store is a plain move; that often keeps it off the profile).
    /// `sequence` counts what was published, also when publishing throws.
    nonisolated(nonsending) func publishStamped(
        _ count: UInt64, on bus: Bus, topic: String, payload: inout [UInt8], sequence: inout UInt64
    ) async throws(HeraldError) {
        var sentAt: UInt64 = 0
        while sequence < count {
            if sequence & BenchHeader.timedMask == 0 { sentAt = monotonicNanos() }
            let stamp = sequence
            payload.withUnsafeMutableBytes { BenchHeader.stamp($0, sequence: stamp, time: sentAt) }
            try await bus.publish(topic, payload)
            sequence += 1
            if sequence & 0xFFF == 0 { progress.store(sequence, ordering: .relaxed) }
        }
    }

    /// W9: publishes `count` payloads, each written in full into a fresh ``SealedPayload``
    /// (what a producer rendering into shared memory pays) and passed as a sealed memfd. A
    /// flush every few messages keeps at most about 256 MiB of payloads in flight (held as
    /// memfds by the broker and the subscribers), well inside the broker's per-user
    /// descriptor quota.
    nonisolated(nonsending) func publishSealed(
        _ count: UInt64, on bus: Bus, topic: String, template: [UInt8], sequence: inout UInt64
    ) async throws(HeraldError) {
        let window = UInt64(max(1, min(64, (256 << 20) / max(1, template.count))))
        while sequence < count {
            var payload = try SealedPayload(count: template.count)
            let stamp = sequence
            let sentAt = monotonicNanos()
            payload.withUnsafeMutableBytes { memory in
                template.withUnsafeBytes { memory.copyMemory(from: $0) }
                BenchHeader.stamp(memory, sequence: stamp, time: sentAt)
            }
            try await bus.publish(topic, payload)
            sequence += 1
            if sequence % window == 0 { try await bus.flush() }
            progress.store(sequence, ordering: .relaxed)
        }
    }
}
