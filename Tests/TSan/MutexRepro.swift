// ThreadSanitizer's false positive on Synchronization.Mutex, reduced to 15 lines.
//
//     swiftc -sanitize=thread -g Tests/TSan/MutexRepro.swift -o /tmp/mutex-repro && /tmp/mutex-repro
//
// prints "total 200000" (the lock works) and a "Swift access race" report: on Linux, Mutex
// locks with raw futex system calls, which ThreadSanitizer does not intercept, so it sees
// no happens-before between two critical sections. Herald's client library guards its
// outgoing buffer and each subscription's queue with Mutex, hence suppressions.txt.
import Synchronization
import Foundation

// Two threads increment a class's field, always under the same Synchronization.Mutex.
final class Box { var value = 0 }
let lock = Mutex(Box())
let threads = (0..<2).map { _ in
    Thread {
        for _ in 0..<100_000 { lock.withLock { $0.value += 1 } }
    }
}
threads.forEach { $0.start() }
while lock.withLock({ $0.value }) < 200_000 { usleep(1000) }
print("total", lock.withLock { $0.value })
