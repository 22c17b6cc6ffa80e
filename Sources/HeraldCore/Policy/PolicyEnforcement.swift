import HeraldProtocol
import Logging

/// Applying the ``Policy``: per-identity access (computed once), denials, and reloading a
/// new configuration into a running broker.
extension BrokerCore {

    /// The policy as it applies to `identity`, computed on first use and shared by every
    /// peer with that identity until the policy changes.
    func access(for identity: PeerIdentity) -> PeerAccess {
        if let known = accessByIdentity[identity] { return known }
        let computed = PeerAccess(policy: configuration.policy, identity: identity)
        accessByIdentity[identity] = computed
        return computed
    }

    /// Refuses a request the policy forbids: a non-fatal `forbidden` ERROR naming the rule,
    /// counted, and logged (at most once a second, with how many were not logged) with the
    /// peer's uid and pid.
    func deny(_ peer: PeerPointer, requestID: UInt32, action: String, target: String, rule: PolicyLocation) {
        statistics.policyDenials &+= 1
        statistics.requestErrors &+= 1
        let message = "\(action) '\(target.prefix(128))' is denied by \(rule)"
        if let heldBack = denialLog.admit(now: clock) {
            logger.notice(
                "request denied by policy",
                metadata: peerMetadata(peer, ["rule": "\(rule)", "error": "\(message)", "denials_not_logged": "\(heldBack)"]))
        }
        enqueue(.error(ErrorFrame(.forbidden, requestID: requestID, message: message)), to: peer)
    }

    /// Replaces the broker's configuration with `newConfiguration` (heraldd's SIGHUP) at `now`.
    ///
    /// New limits apply to requests and connections from now on (a connection keeps the
    /// output limit it was welcomed with). The new policy applies to everyone at once:
    /// connections whose user is no longer admitted are closed with `not_authorized`;
    /// subscriptions it no longer allows are removed, each with a `subscription_revoked`
    /// ERROR carrying the subscription id; every cached route is rebuilt on its next use.
    public func reload(_ newConfiguration: BrokerConfiguration, now: Double) -> PolicyReloadSummary {
        clock = now
        configuration = newConfiguration
        accessByIdentity.removeAll()
        var summary = PolicyReloadSummary()
        for peer in peers.snapshot() where peer.pointee.isOpen {
            guard isAdmitted(peer.pointee.identity) else {
                summary.connectionsClosed += 1
                statistics.connectionsClosedByPolicy &+= 1
                logger.warning(
                    "closing connection: no longer admitted by the reloaded policy",
                    metadata: peerMetadata(peer, [:]))
                fail(peer, .notAuthorized,
                    "uid \(peer.pointee.identity.uid) is no longer authorized to connect to this bus (policy reloaded)")
                continue
            }
            let access = access(for: peer.pointee.identity)
            peer.pointee.access = access
            for (subscriptionID, filter) in peer.pointee.subscriptions.sorted(by: { $0.key < $1.key }) {
                guard let rule = access.subscribeDenial(filter) else { continue }
                removeSubscription(subscriptionID, of: peer)
                summary.subscriptionsRevoked += 1
                statistics.subscriptionsRevoked &+= 1
                let message = "subscription \(subscriptionID) to '\(filter.text.prefix(128))' was removed: the reloaded policy denies it at \(rule)"
                logger.notice("subscription revoked by policy", metadata: peerMetadata(peer, ["rule": "\(rule)", "error": "\(message)"]))
                enqueue(.error(ErrorFrame(.subscriptionRevoked, requestID: subscriptionID, message: message)), to: peer)
            }
        }
        // Cached routes were built under the old policy (who may receive what).
        index.invalidateRoutes()
        return summary
    }
}

/// What a reload changed for the connected peers.
public struct PolicyReloadSummary: Sendable, Equatable {
    /// Connections closed because their user is no longer admitted.
    public var connectionsClosed = 0
    /// Subscriptions removed because the new policy denies them.
    public var subscriptionsRevoked = 0

    /// Nothing changed.
    public init() {}
}
