import HeraldProtocol
import Testing

/// Address notation as PROTOCOL.md describes it (environment lookup is left to integration tests).
@Suite struct BusAddressTests {
    @Test func atSignMeansAbstractNamespace() {
        let address = BusAddress("@herald/1000")
        #expect(address.isAbstract)
        #expect(address.name == "herald/1000")
        #expect(address.description == "@herald/1000")
    }

    @Test func anythingElseIsAPath() {
        let address = BusAddress("/run/user/1000/herald.sock")
        #expect(!address.isAbstract)
        #expect(address.name == "/run/user/1000/herald.sock")
    }

    @Test func defaultIsPerUser() {
        #expect(BusAddress.userDefault(uid: 1000) == BusAddress("@herald/1000"))
        #expect(BusAddress.userDefault(uid: 0).description == "@herald/0")
    }

    @Test func explicitAddressWins() {
        #expect(BusAddress.resolve("@elsewhere") == BusAddress("@elsewhere"))
    }

    @Test func namesMustFitSunPath() {
        #expect(BusAddress("@" + String(repeating: "n", count: 107)).isValid)
        #expect(!BusAddress("@" + String(repeating: "n", count: 108)).isValid)
        #expect(!BusAddress("@").isValid)
    }
}
