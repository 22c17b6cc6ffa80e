import HeraldProtocol
import Logging

/// Admission: who may connect, the handshake limits, and what a refused connection is told
/// (PROTOCOL.md §5.2).
extension BrokerCore {

    /// Registers a new connection. A peer that is refused (admission policy, connection or
    /// handshake limits) is returned already closing, with its fatal ERROR queued and
    /// ``Peer/closeImmediately`` set. (The epoll server asks ``refusalFrame(for:now:)``
    /// first and never registers a refused connection at all.)
    func connectPeer(credentials: PeerCredentials, groups: [UInt32], now: Double) -> PeerPointer {
        clock = now
        let identity = PeerIdentity(uid: credentials.uid, gid: credentials.gid, groups: groups)
        let refusal = admissionRefusal(of: identity)
        let access = access(for: identity)
        let queuedOutput = holdQueuedOutput(of: credentials.uid)
        let peer = peers.insert { slot, id in
            Peer(slot: slot, id: id, credentials: credentials, identity: identity, access: access,
                queuedOutput: queuedOutput, outputLimit: configuration.outputLimit,
                handshakeDeadline: now + configuration.handshakeTimeout)
        }
        let id = peer.pointee.id
        statistics.connectionsAccepted += 1
        statistics.connectionsOpen += 1

        if let refusal {
            recordRefusal(refusal, credentials: credentials)
            refuse(peer, refusal.code, refusal.message)
        } else {
            enterHandshake(peer)
            logger.debug(
                "accepted connection",
                metadata: ["peer": "\(id)", "pid": "\(credentials.pid)", "uid": "\(credentials.uid)", "gid": "\(credentials.gid)"])
        }
        return peer
    }

    /// Decides at accept time whether a connection with `credentials` is refused. A refused
    /// connection is counted and logged (at most once a second) here and gets no peer at
    /// all: the server writes the returned fatal ERROR frame once and closes the socket, so
    /// a flood of refused connections costs one accept, one write and one close each.
    /// Returns nil to admit (then call ``connect(credentials:groups:now:)``). `groups` are the
    /// peer's supplementary groups (SO_PEERGROUPS), for group rules.
    public func refusalFrame(for credentials: PeerCredentials, groups: [UInt32] = [], now: Double) -> [UInt8]? {
        clock = now
        let identity = PeerIdentity(uid: credentials.uid, gid: credentials.gid, groups: groups)
        guard let refusal = admissionRefusal(of: identity) else { return nil }
        statistics.connectionsAccepted += 1
        recordRefusal(refusal, credentials: credentials)
        if let cached = lastRefusal, cached.refusal == refusal { return cached.frame }
        let frame = FrameEncoder.encode(
            .error(ErrorFrame(code: refusal.code.rawValue, isFatal: true, requestID: 0, message: refusal.message)))
        lastRefusal = (refusal, frame)
        return frame
    }

    func recordRefusal(_ refusal: AdmissionRefusal, credentials: PeerCredentials) {
        statistics.connectionsRefused += 1
        if let heldBack = refusalLog.admit(now: clock) {
            logger.warning(
                "refused connection: \(refusal.code)",
                metadata: ["pid": "\(credentials.pid)", "uid": "\(credentials.uid)", "error": "\(refusal.message)",
                    "refusals_not_logged": "\(heldBack)"])
        }
    }

    /// The server refused `count` connections at the descriptor limit without registering them.
    public func recordConnectionsShed(_ count: Int) {
        statistics.connectionsShedAtDescriptorLimit &+= UInt64(count)
        statistics.connectionsRefused &+= UInt64(count)
    }

    /// Why a new connection with `identity` would be refused now, or nil to admit it.
    func admissionRefusal(of identity: PeerIdentity) -> AdmissionRefusal? {
        let uid = identity.uid
        if !isAdmitted(identity) { return .notAuthorized(uid: uid) }
        if peers.count >= configuration.maxConnections { return .connectionLimit(configuration.maxConnections) }
        if usage(of: uid).connections >= configuration.maxConnectionsPerUID {
            return .connectionLimitForUID(uid: uid, limit: configuration.maxConnectionsPerUID)
        }
        if handshakingCount >= configuration.maxHandshakingConnections {
            return .handshakeLimit(configuration.maxHandshakingConnections)
        }
        if handshakingByUID[uid, default: 0] >= configuration.maxHandshakingConnectionsPerUID {
            return .handshakeLimitForUID(uid: uid, limit: configuration.maxHandshakingConnectionsPerUID)
        }
        return nil
    }

    /// Admission: the broker's own uid, root, `--allow-uid`, and the users and groups the
    /// policy admits.
    func isAdmitted(_ identity: PeerIdentity) -> Bool {
        let uid = identity.uid
        return uid == brokerUID || uid == 0 || configuration.extraAllowedUIDs.contains(uid)
            || configuration.policy.admits(identity)
    }

    func enterHandshake(_ peer: PeerPointer) {
        peer.pointee.countedInHandshake = true
        peer.pointee.chargedToUser = true
        charge(peer.pointee.credentials.uid) { $0.connections += 1 }
        handshakingCount += 1
        handshakingByUID[peer.pointee.credentials.uid, default: 0] += 1
    }

    /// The peer was welcomed, or is closing before it was: it no longer counts against the
    /// handshake limits.
    func leaveHandshake(_ peer: PeerPointer) {
        guard peer.pointee.countedInHandshake else { return }
        peer.pointee.countedInHandshake = false
        handshakingCount -= 1
        let uid = peer.pointee.credentials.uid
        let left = handshakingByUID[uid, default: 1] - 1
        handshakingByUID[uid] = left == 0 ? nil : left
    }
}
