// The client library speaks in the protocol's own vocabulary (BusAddress,
// SlowConsumerPolicy, Welcome, PeerCredentials), so importing Herald is enough to use it.
@_exported import HeraldProtocol
// The descriptors a message passes (Bus.publish(_:_:fileDescriptors:), Message.fileDescriptors).
@_exported import struct SystemPackage.FileDescriptor
