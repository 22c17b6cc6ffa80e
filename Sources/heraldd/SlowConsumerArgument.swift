import ArgumentParser
import HeraldProtocol

/// The value of `--slow-consumer`: a policy by name. A wrapper rather than an
/// `ExpressibleByArgument` conformance on ``SlowConsumerPolicy`` itself, because
/// ArgumentParser shows the default of a `CaseIterable` raw-value enum by its raw value
/// (`default: 0`), where a person at the terminal needs `default: drop`.
struct SlowConsumerArgument: ExpressibleByArgument {
    let policy: SlowConsumerPolicy

    init(_ policy: SlowConsumerPolicy) {
        self.policy = policy
    }

    init?(argument: String) {
        guard let policy = SlowConsumerPolicy.allCases.first(where: { $0.description == argument }) else { return nil }
        self.policy = policy
    }

    var defaultValueDescription: String { policy.description }

    static var allValueStrings: [String] { SlowConsumerPolicy.allCases.map(\.description) }
}
