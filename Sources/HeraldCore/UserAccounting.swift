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
