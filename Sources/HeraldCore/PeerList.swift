/// A list of peer pointers in manually managed memory, for routes that the hot path walks
/// once per message: iterating it costs no reference counting (a Swift array would retain
/// its buffer on every walk through a pointer).
struct PeerList: ~Copyable {
    private(set) var base: UnsafeMutablePointer<PeerPointer>?
    private(set) var count = 0
    private var capacity = 0

    init() {}

    deinit { base?.deallocate() }

    mutating func removeAll() { count = 0 }

    mutating func append(_ peer: PeerPointer) {
        if count == capacity {
            let newCapacity = max(8, capacity * 2)
            let newBase = UnsafeMutablePointer<PeerPointer>.allocate(capacity: newCapacity)
            if let base {
                newBase.initialize(from: base, count: count)
                base.deallocate()
            }
            base = newBase
            capacity = newCapacity
        }
        (base! + count).initialize(to: peer)
        count += 1
    }
}
