import HeraldProtocol
import HeraldTestSupport
import Testing

/// PROTOCOL.md must agree with the code it specifies: frame types, error codes and the
/// worked example are checked, so the document cannot drift silently.
@Suite struct SpecificationTests {
    let document: SpecificationDocument

    init() throws { document = try SpecificationDocument() }

    @Test func frameTypeTableListsEveryTypeWithItsByte() throws {
        let rows = try document.tableRows(after: "frame-types")
        let listed = rows.map { "\($0[0]) \($0[1])" }
        let expected = FrameType.allCases.map {
            "0x\(String($0.rawValue, radix: 16, uppercase: true).leftPadded(to: 2)) \($0)"
        }
        #expect(listed == expected)
    }

    @Test func errorCodeTableListsEveryCodeWithNameAndFatality() throws {
        let rows = try document.tableRows(after: "error-codes")
        let listed = rows.map { "\($0[0]) \($0[1]) \($0[2])" }
        let expected = ErrorCode.allCases.map {
            "\($0.rawValue) `\(ProtocolNames.name(of: $0))` \($0.isFatal ? "fatal" : "non-fatal")"
        }
        #expect(listed == expected)
    }

    /// Every ERROR code the broker's check-order table names is pinned by a broker vector
    /// (but `frame_timeout`, which is about time, not bytes), in the state the table gives.
    @Test func brokerCheckOrderTableIsPinnedByVectors() throws {
        let rows = try document.tableRows(after: "broker-check-order")
        try #require(rows.count >= 10)
        let vectors = try BrokerVector.all()
        for row in rows {
            let state: BrokerVector.State? = row[1] == "before WELCOME" ? .handshaking : row[1] == "after WELCOME" ? .active : nil
            let names = row[3].split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
            #expect(!names.isEmpty, "row without a code: \(row)")
            // frame_timeout is a matter of time, forbidden one of the broker's policy and
            // retained_quota_exceeded one of its quotas, not of bytes: ResourceLimitTests,
            // PolicyTests and RetainedTests pin them. duplicate_request, too_many_requests and
            // responder_busy need an earlier request or a responder's backlog, which one frame
            // from a fresh session cannot have: RequestTests pins them. direct_not_accepted needs
            // a target connection: DirectMessageTests pins it. The descriptor errors need the fds
            // capability and descriptors passed beside the bytes (SCM_RIGHTS), which a byte
            // vector cannot carry: DescriptorPassingTests and DescriptorServerTests pin them.
            let configurationDependent: Set = [
                "frame_timeout", "forbidden", "retained_quota_exceeded", "duplicate_request", "too_many_requests", "responder_busy",
                "direct_not_accepted", "fd_count_mismatch", "too_many_fds", "fd_quota_exceeded", "fds_not_accepted",
            ]
            for name in names where !configurationDependent.contains(name) {
                let pinned = vectors.contains { vector in
                    guard case .error(let code, _, _) = vector.reply else { return false }
                    return ErrorCodeNames.name(of: code) == name && (state == nil || vector.state == state)
                }
                #expect(pinned, "no broker vector for \(name) (\(row[1]))")
            }
        }
    }

    /// The example's hex is the session vector file's, frame for frame and direction for
    /// direction; FrameVectorTests checks those against the real encoder and decoder.
    @Test func workedExampleIsTheSessionVectorFile() throws {
        let example = try document.hexListing(after: "worked-example")
        let session = try VectorCatalog.vectors(in: "session.json")
        try #require(
            example.count == session.count, "the example has \(example.count) frames, session.json \(session.count)")
        for (shown, vector) in zip(example, session) {
            #expect(Hex.string(shown.bytes) == Hex.string(vector.bytes), "\(vector)")
            #expect(shown.direction == (vector.direction == "c2s" ? "C→B" : "B→C"), "\(vector)")
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
