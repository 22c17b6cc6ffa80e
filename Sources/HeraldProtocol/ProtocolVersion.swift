/// Protocol versions this build speaks, and the constants every frame shares.
public enum ProtocolVersion {
    /// The only version defined so far.
    public static let v1: UInt16 = 1
    /// Lowest version this build accepts.
    public static let minimum: UInt16 = 1
    /// Highest version this build accepts.
    public static let maximum: UInt16 = 1
    /// The four bytes `HRLD` that open every HELLO body, so a broker can tell a Herald
    /// client from something that connected by mistake.
    public static let helloMagic: UInt32 = 0x444C_5248  // "HRLD" read little-endian
}
