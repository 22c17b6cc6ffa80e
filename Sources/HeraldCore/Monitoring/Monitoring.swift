import HeraldProtocol
import Logging

/// Monitoring (PROTOCOL.md §4.21, `herald monitor`): a monitor subscription (SUBSCRIBE flag
/// 0x02) receives the messages published on matching topics like any subscription, and
/// MONITORED copies of the requests, replies and direct messages on them, like `busctl
/// monitor`. Only root and the broker's own user may monitor. Off the hot path: publishes
/// reach monitors through the ordinary routing index, and the copies are made only where
/// requests, replies and direct messages are handled, and only when a monitor exists.
extension BrokerCore {
    /// Whether `peer` may add a monitor subscription: root and the broker's uid. (Where a
    /// policy file's `[monitor]` rule would name others.)
    func mayMonitor(_ peer: PeerPointer) -> Bool {
        let uid = peer.pointee.credentials.uid
        return uid == 0 || uid == brokerUID
    }

    /// Sends every monitor subscription whose filter matches `matchTopic` one MONITORED copy
    /// (per monitoring peer) of what `sender` sent to `target`.
    func copyToMonitors(
        _ kind: Monitored.Kind, from sender: PeerPointer, target: UInt64, callID: UInt32, status: UInt32,
        matchTopic: UnsafeRawBufferPointer, topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer
    ) {
        guard monitors.count > 0 else { return }
        routeEpoch &+= 1
        let epoch = routeEpoch
        var receivers: [(PeerPointer, UInt32)] = []
        monitors.forEachMatch(matchTopic) { entry in
            let peer = entry.peer
            guard peer.pointee.routeMark != epoch, peer.pointee.state == .active, !peer.pointee.drainingForShutdown else { return }
            peer.pointee.routeMark = epoch
            receivers.append((peer, entry.subscriptionID))
        }
        for (monitor, subscriptionID) in receivers {
            var copy = Monitored(
                senderID: sender.pointee.id, sender: sender.pointee.senderCredentials, kind: kind, subscriptionID: subscriptionID,
                target: target, callID: callID, status: status, topic: Array(topic), payload: Array(payload))
            // A monitor is never passed descriptors: its copy says how many went with the original.
            copy.descriptors = withheldForMonitors
            let frame = FrameEncoder.encode(.monitored(copy))
            queueBrokerFrame(frame, to: monitor, about: "monitored traffic")
            statistics.monitoredCopies &+= 1
        }
    }
}
