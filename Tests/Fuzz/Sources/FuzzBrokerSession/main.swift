import FuzzDriver

runFuzzer { data, size in fuzzBrokerSession(data, size) }
