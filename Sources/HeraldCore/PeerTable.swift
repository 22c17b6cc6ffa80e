/// Every connected peer, by slot (the server's handle for it) and by id (the peer id of
/// WELCOME, by which paused publishers are remembered).
///
/// Owns the peers' memory. A removed peer leaves the table at once but is freed only by
/// ``freeReleased()``, which the core calls between batches, once no list of the current
/// batch can point at it; its slot is reused only after that, so a slot the server still
/// holds from this batch finds nothing rather than a stranger.
struct PeerTable: ~Copyable {
    private var slots: [PeerPointer?] = []
    private var vacantSlots: [PeerSlot] = []
    private var slotsByID: [UInt64: PeerSlot] = [:]
    private var nextID: UInt64 = 1
    private var released: [PeerPointer] = []

    init() {}

    deinit {
        for case let peer? in slots { PeerTable.free(peer) }
        for peer in released { PeerTable.free(peer) }
    }

    /// Peers in the table (closing ones included, removed ones not).
    var count: Int { slotsByID.count }

    /// Whether removed peers wait to be freed.
    var hasReleased: Bool { !released.isEmpty }

    /// Adds the peer `make` builds for a fresh slot and id (ids start at 1 and are never reused).
    mutating func insert(_ make: (PeerSlot, UInt64) -> Peer) -> PeerPointer {
        let slot: PeerSlot
        if let vacant = vacantSlots.popLast() {
            slot = vacant
        } else {
            slot = PeerSlot(slots.count)
            slots.append(nil)
        }
        let id = nextID
        nextID += 1
        let peer = PeerPointer.allocate(capacity: 1)
        peer.initialize(to: make(slot, id))
        slots[Int(slot)] = peer
        slotsByID[id] = slot
        return peer
    }

    /// The peer in `slot`, if the slot holds one.
    @inline(__always)
    subscript(slot: PeerSlot) -> PeerPointer? {
        guard slot >= 0, Int(slot) < slots.count else { return nil }
        return slots[Int(slot)]
    }

    /// The peer with WELCOME's `id`, if it is still in the table.
    func pointer(id: UInt64) -> PeerPointer? {
        guard let slot = slotsByID[id] else { return nil }
        return slots[Int(slot)]
    }

    /// Every peer in the table, as a copy the caller may iterate while peers close or are
    /// removed (timers, shutdown; not the hot path).
    func snapshot() -> [PeerPointer] {
        slots.compactMap { $0 }
    }

    /// Takes `peer` out of the table; its memory is freed by the next ``freeReleased()``.
    mutating func remove(_ peer: PeerPointer) {
        slotsByID[peer.pointee.id] = nil
        slots[Int(peer.pointee.slot)] = nil
        released.append(peer)
    }

    /// Frees the peers removed since the last call and makes their slots reusable.
    mutating func freeReleased() {
        for peer in released {
            vacantSlots.append(peer.pointee.slot)
            PeerTable.free(peer)
        }
        released.removeAll(keepingCapacity: true)
    }

    private static func free(_ peer: PeerPointer) {
        peer.deinitialize(count: 1)
        peer.deallocate()
    }
}
