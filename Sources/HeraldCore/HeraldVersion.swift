
/// The version of this Herald build.
public enum HeraldVersion {
    /// Semantic version string.
    public static let string = "0.1.0"
}
