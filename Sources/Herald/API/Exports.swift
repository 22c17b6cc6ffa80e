// The client library speaks in the protocol's own vocabulary (BusAddress,
// SlowConsumerPolicy, Welcome, PeerCredentials), so importing Herald is enough to use it.
@_exported import HeraldProtocol
