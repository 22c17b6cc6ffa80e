import HeraldCore
import HeraldProtocol
import TOMLKit

#if canImport(Glibc)
import Glibc
#endif

/// heraldd's configuration file (`--config FILE`, TOML): who may connect, who may publish
/// and subscribe to what, and the limits that are otherwise flags. The format, with
/// examples, is in the README ("Security") and examples/heraldd.toml:
///
/// ```toml
/// [connect]                 # admitted besides the broker's own user and root
/// users = ["alice", 1001]
/// groups = ["herald"]
///
/// [default]                 # when no rule applies (both "allow" if not said)
/// publish = "deny"
/// subscribe = "allow"
///
/// [limits]                  # same names as the flags; a flag overrides the file
/// output-limit = "8M"
/// max-connections-per-uid = 256
///
/// [[rule]]                  # first rule that applies wins
/// topics = "power/#"
/// users = ["upower"]
/// publish = "allow"
/// ```
///
/// Every user and group name is resolved once, here; an unknown name is an error, as is
/// any unknown table or key, so a typo cannot silently open or close the bus.
public struct ConfigurationFile: Sendable {
    /// The file, as given.
    public let path: String
    /// The access policy it describes.
    public let policy: Policy
    /// The limits it sets, in file order.
    public let limits: [(setting: LimitSetting, value: LimitSetting.Value, line: Int)]

    /// Reads and parses the file at `path`.
    public static func load(path: String, names: NameResolver = SystemNameResolver()) throws(ConfigurationFileError) -> ConfigurationFile {
        guard let text = readFile(path) else {
            throw ConfigurationFileError(path: path, problems: [.init(line: 0, message: "cannot read the file: \(String(cString: strerror(errno)))")])
        }
        return try parse(text, path: path, names: names)
    }

    /// Parses `text` as the contents of a file called `path`.
    public static func parse(_ text: String, path: String, names: NameResolver = SystemNameResolver()) throws(ConfigurationFileError) -> ConfigurationFile {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationFileError(path: path, problems: [.init(line: error.source.begin.line, message: error.description)])
        } catch {
            throw ConfigurationFileError(path: path, problems: [.init(line: 0, message: "\(error)")])
        }
        var parser = Parser(path: path, lines: SourceLines(text), names: names)
        let file = parser.read(table)
        guard parser.problems.isEmpty else { throw ConfigurationFileError(path: path, problems: parser.problems) }
        return file
    }

    /// Applies the file's policy and limits to `configuration`.
    public func apply(to configuration: inout BrokerConfiguration) {
        configuration.policy = policy
        for limit in limits { limit.setting.apply(limit.value, to: &configuration) }
    }

    fileprivate init(path: String, policy: Policy, limits: [(setting: LimitSetting, value: LimitSetting.Value, line: Int)]) {
        self.path = path
        self.policy = policy
        self.limits = limits
    }

    private static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 { return nil }
            if count == 0 { break }
            bytes += chunk[..<count]
            // A policy file is small; refuse to read something that is not one.
            if bytes.count > 16 << 20 {
                errno = EFBIG
                return nil
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Reads the TOML tables into a ``ConfigurationFile``, collecting every problem.
private struct Parser {
    let path: String
    let lines: SourceLines
    let names: NameResolver
    var problems: [ConfigurationFileError.Problem] = []

    init(path: String, lines: SourceLines, names: NameResolver) {
        self.path = path
        self.lines = lines
        self.names = names
    }

    mutating func problem(_ line: Int, _ message: String) {
        problems.append(.init(line: line, message: message))
    }

    mutating func read(_ root: TOMLTable) -> ConfigurationFile {
        var policy = Policy(defaultLocation: PolicyLocation(file: path, line: 0))
        var limits: [(setting: LimitSetting, value: LimitSetting.Value, line: Int)] = []
        for key in root.keys {
            let value = root[key]!
            switch key {
            case "connect":
                guard let table = table(value, named: "connect") else { continue }
                checkKeys(table, in: "connect", allowed: ["users", "groups"])
                policy.admittedUsers = users(table["users"], key: "users", in: "connect")
                policy.admittedGroups = groups(table["groups"], key: "groups", in: "connect")
            case "default":
                guard let table = table(value, named: "default") else { continue }
                checkKeys(table, in: "default", allowed: ["publish", "subscribe"])
                policy.defaultPublish = verdict(table["publish"], key: "publish", in: "default") ?? .allow
                policy.defaultSubscribe = verdict(table["subscribe"], key: "subscribe", in: "default") ?? .allow
                policy.defaultLocation = PolicyLocation(file: path, line: lines.line(ofTable: "default"))
            case "limits":
                guard let table = table(value, named: "limits") else { continue }
                for limitKey in table.keys.sorted(by: { lines.line(of: $0, in: "limits") < lines.line(of: $1, in: "limits") }) {
                    let line = lines.line(of: limitKey, in: "limits")
                    guard let setting = LimitSetting(rawValue: limitKey) else {
                        let known = LimitSetting.allCases.map(\.rawValue).joined(separator: ", ")
                        problem(line, "unknown limit '\(limitKey)' (known: \(known))")
                        continue
                    }
                    let raw = table[limitKey]!
                    switch setting.value(integer: raw.int, double: raw.double, string: raw.string) {
                    case .success(let value): limits.append((setting, value, line))
                    case .failure(let failure): problem(line, "\(limitKey) \(failure.message)")
                    }
                }
            case "rule":
                policy.rules = rules(value)
            default:
                problem(lines.line(ofTable: key), "unknown table '\(key)' (known: connect, default, limits, rule)")
            }
        }
        return ConfigurationFile(path: path, policy: policy, limits: limits)
    }

    mutating func table(_ value: TOMLValueConvertible, named name: String) -> TOMLTable? {
        guard let table = value.table else {
            problem(lines.line(ofTable: name), "'\(name)' must be a table: [\(name)]")
            return nil
        }
        return table
    }

    mutating func checkKeys(_ table: TOMLTable, in tableName: String, allowed: Set<String>) {
        for key in table.keys where !allowed.contains(key) {
            problem(lines.line(of: key, in: tableName),
                "unknown key '\(key)' in \(tableName) (known: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    mutating func rules(_ value: TOMLValueConvertible) -> [PolicyRule] {
        guard let array = value.array, array.allSatisfy({ $0.table != nil }) else {
            problem(lines.line(ofTable: "rule"), "rules must be written as [[rule]] tables")
            return []
        }
        guard array.count == lines.rules.count else {
            problem(lines.line(ofTable: "rule"), "write each rule as its own [[rule]] table (not as an inline array) so its line can be named")
            return []
        }
        var rules: [PolicyRule] = []
        for (position, element) in array.enumerated() {
            let table = element.table!
            let name = "rule#\(position)"
            let line = lines.rules[position]
            checkKeys(table, in: name, allowed: ["topics", "users", "groups", "publish", "subscribe"])
            guard let text = table["topics"]?.string else {
                problem(line, "a rule needs topics = \"<filter>\" (for example \"power/#\")")
                continue
            }
            var filter: TopicFilter?
            do {
                filter = try TopicFilter(text)
            } catch {
                problem(lines.line(of: "topics", in: name), "topics '\(text)' is not a valid filter: \(error)")
            }
            let publish = verdict(table["publish"], key: "publish", in: name)
            let subscribe = verdict(table["subscribe"], key: "subscribe", in: name)
            if publish == nil && subscribe == nil && table["publish"] == nil && table["subscribe"] == nil {
                problem(line, "the rule for '\(text)' says neither publish = \"allow\"/\"deny\" nor subscribe = \"allow\"/\"deny\"")
            }
            if publish != nil && text.hasPrefix("$") {
                problem(lines.line(of: "publish", in: name), "only the broker publishes to '$' topics; a rule cannot allow or deny it")
            }
            let subjects = PolicySubjects(
                users: users(table["users"], key: "users", in: name), groups: groups(table["groups"], key: "groups", in: name))
            guard let filter else { continue }
            rules.append(
                PolicyRule(filter: filter, subjects: subjects, publish: publish, subscribe: subscribe,
                    location: PolicyLocation(file: path, line: line)))
        }
        return rules
    }

    mutating func verdict(_ value: TOMLValueConvertible?, key: String, in table: String) -> PolicyVerdict? {
        guard let value else { return nil }
        guard let text = value.string, let verdict = PolicyVerdict(rawValue: text) else {
            problem(lines.line(of: key, in: table), "\(key) must be \"allow\" or \"deny\"")
            return nil
        }
        return verdict
    }

    mutating func users(_ value: TOMLValueConvertible?, key: String, in table: String) -> Set<UInt32> {
        let names = self.names
        return ids(value, key: key, in: table, kind: "user") { names.userID(named: $0) }
    }

    mutating func groups(_ value: TOMLValueConvertible?, key: String, in table: String) -> Set<UInt32> {
        let names = self.names
        return ids(value, key: key, in: table, kind: "group") { names.groupID(named: $0) }
    }

    /// A list of names or numeric ids, each resolved now.
    mutating func ids(
        _ value: TOMLValueConvertible?, key: String, in table: String, kind: String, resolve: (String) -> UInt32?
    ) -> Set<UInt32> {
        guard let value else { return [] }
        let line = lines.line(of: key, in: table)
        guard let array = value.array else {
            problem(line, "\(key) must be a list of \(kind) names or ids, e.g. \(key) = [\"name\", 1000]")
            return []
        }
        if array.isEmpty && table.hasPrefix("rule#") {
            problem(line, "\(key) is empty; leave it out instead (a rule without users or groups is for everyone)")
        }
        var result: Set<UInt32> = []
        for element in array {
            if let number = element.int {
                guard number >= 0, number < Int(UInt32.max) else {
                    problem(line, "\(number) is not a valid \(kind) id")
                    continue
                }
                result.insert(UInt32(number))
            } else if let name = element.string {
                guard let id = resolve(name) else {
                    problem(line, "no \(kind) named '\(name)' on this system")
                    continue
                }
                result.insert(id)
            } else {
                problem(line, "\(key) holds something that is neither a \(kind) name nor an id")
            }
        }
        return result
    }
}
