/// Why a configuration file was rejected: every problem found, each with its line.
public struct ConfigurationFileError: Error, CustomStringConvertible, Equatable {
    /// One problem.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        /// 1-based line (0 if the problem is not on one line, e.g. the file cannot be read).
        public var line: Int
        /// What is wrong, in words.
        public var message: String

        /// Creates a problem.
        public init(line: Int, message: String) {
            self.line = line
            self.message = message
        }

        public var description: String { line > 0 ? "line \(line): \(message)" : message }
    }

    /// The file, as given.
    public var path: String
    /// Everything wrong with it, in line order.
    public var problems: [Problem]

    /// Creates an error.
    public init(path: String, problems: [Problem]) {
        self.path = path
        self.problems = problems.sorted { $0.line < $1.line }
    }

    /// One `file:line: message` per problem, like a compiler.
    public var description: String {
        problems.map { $0.line > 0 ? "\(path):\($0.line): \($0.message)" : "\(path): \($0.message)" }.joined(separator: "\n")
    }
}
