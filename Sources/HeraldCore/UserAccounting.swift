/// What one user id holds on the bus, summed over all its connections: the per-uid quotas
/// of ``BrokerConfiguration`` are checked against it, so one user cannot exhaust the bus for
/// the others, while only the connection that goes over a quota is refused (never every
/// connection of that uid).
struct UserUsage {
    /// Admitted connections (handshaking, active or closing).
    var connections = 0
    /// Active subscriptions.
    var subscriptions = 0

    var isEmpty: Bool { connections == 0 && subscriptions == 0 }
}

extension BrokerCore {
    /// Changes `uid`'s usage; an entry that drops to nothing is removed (the table holds
    /// only users with something on the bus).
    func charge(_ uid: UInt32, _ change: (inout UserUsage) -> Void) {
        var usage = usageByUID[uid, default: UserUsage()]
        change(&usage)
        usageByUID[uid] = usage.isEmpty ? nil : usage
    }

    /// `uid`'s current usage (zero if it has nothing on the bus).
    func usage(of uid: UInt32) -> UserUsage { usageByUID[uid, default: UserUsage()] }
}

/// Bytes queued for one uid's connections, summed: a subscriber's backlog is charged to its
/// uid (``BrokerConfiguration/maxQueuedBytesPerUID``). Each connection of the uid holds a
/// pointer to it, so the router charges a delivery with one addition, no lookup.
struct QueuedOutput {
    /// Bytes queued for all the uid's connections.
    var bytes = 0
    /// Connections holding a pointer to this record; it is freed when the last one goes.
    var holders = 0
}

typealias QueuedOutputPointer = UnsafeMutablePointer<QueuedOutput>

extension BrokerCore {
    /// The queued-output record of `uid`, created for its first connection; the caller
    /// becomes a holder until ``releaseQueuedOutput(of:)``.
    func holdQueuedOutput(of uid: UInt32) -> QueuedOutputPointer {
        let record: QueuedOutputPointer
        if let existing = queuedOutputByUID[uid] {
            record = existing
        } else {
            record = QueuedOutputPointer.allocate(capacity: 1)
            record.initialize(to: QueuedOutput())
            queuedOutputByUID[uid] = record
        }
        record.pointee.holders += 1
        return record
    }

    /// `peer` is gone: what is still queued for it no longer counts, and its uid's record is
    /// freed with its last connection.
    func releaseQueuedOutput(of peer: PeerPointer) {
        let record = peer.pointee.queuedOutput
        record.pointee.bytes -= peer.pointee.output.count
        record.pointee.holders -= 1
        if record.pointee.holders == 0 {
            queuedOutputByUID[peer.pointee.credentials.uid] = nil
            record.deinitialize(count: 1)
            record.deallocate()
        }
    }

    /// The server (or a test) wrote `count` bytes of `peer`'s output.
    func consumeOutput(of peer: PeerPointer, _ count: Int) {
        // Once per write, not per message.
        statistics.bytesWritten &+= UInt64(count)
        if !peer.pointee.passing.isEmpty { releasePassesWritten(of: peer, upTo: peer.pointee.outputConsumed + count) }
        peer.pointee.outputConsumed &+= count
        peer.pointee.output.consume(count)
        peer.pointee.chargeQueued(-count)
    }

    /// Cuts `peer`'s output after the frame being written (``ByteQueue/truncateToFrameBoundary()``)
    /// and takes what was cut off its uid's total. Returns the bytes discarded.
    @discardableResult
    func truncateOutputToFrameBoundary(of peer: PeerPointer) -> Int {
        let discarded = peer.pointee.output.truncateToFrameBoundary()
        peer.pointee.chargeQueued(-discarded)
        if discarded > 0 && !peer.pointee.passing.isEmpty { releasePassesCut(of: peer) }
        return discarded
    }

    /// Bytes queued for every connection of `uid`.
    func queuedBytes(of uid: UInt32) -> Int { queuedOutputByUID[uid]?.pointee.bytes ?? 0 }
}
