import ArgumentParser
import HeraldProtocol

/// The value of `--slow-consumer`: a policy by name. A wrapper rather than an
/// `ExpressibleByArgument` conformance on ``SlowConsumerPolicy`` itself, because
/// ArgumentParser would list a `CaseIterable` raw-value enum's values by raw value (`0`,
/// `1`, `2`), where a person at the terminal needs `drop`, `disconnect`, `backpressure`.
struct SlowConsumerArgument: ExpressibleByArgument {
    let policy: SlowConsumerPolicy

    init?(argument: String) {
        guard let policy = SlowConsumerPolicy.allCases.first(where: { $0.description == argument }) else { return nil }
        self.policy = policy
    }

    static var allValueStrings: [String] { SlowConsumerPolicy.allCases.map(\.description) }
}
