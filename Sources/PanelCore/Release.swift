/// The release this build is. Frozen fixtures live under Tests/Fixtures/releases/<release>/.
public enum Release {
    public static let current = "1.2"
}
