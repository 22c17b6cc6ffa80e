// CHeraldSys: the Linux system interface Herald needs and Swift's Glibc module does not
// expose cleanly: epoll, accept4, SO_PEERCRED (struct ucred hides behind _GNU_SOURCE),
// exact-length abstract AF_UNIX addresses, signalfd and eventfd, sealed memfds and
// receiving descriptors (SCM_RIGHTS).
//
// Every function returns -1 and leaves errno set on failure, like the system calls it wraps.
#ifndef C_HERALD_SYS_H
#define C_HERALD_SYS_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <spawn.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One readiness event, unpacked (the kernel's struct epoll_event is packed on x86_64,
/// which Swift imports poorly).
typedef struct {
    uint32_t events;
    uint64_t data;
} herald_event;

// epoll event bits (same values as EPOLLIN, … in <sys/epoll.h>), typed for Swift.
static const uint32_t HERALD_EV_IN = 0x001;
static const uint32_t HERALD_EV_OUT = 0x004;
static const uint32_t HERALD_EV_ERR = 0x008;
static const uint32_t HERALD_EV_HUP = 0x010;
static const uint32_t HERALD_EV_RDHUP = 0x2000;
static const uint32_t HERALD_EV_ET = 1u << 31;
// epoll_ctl operations.
static const int HERALD_EPOLL_ADD = 1;
static const int HERALD_EPOLL_DEL = 2;
static const int HERALD_EPOLL_MOD = 3;

/// Kernel-verified identity of the process on the other end of a Unix socket.
typedef struct {
    int32_t pid;
    uint32_t uid;
    uint32_t gid;
} herald_peer_credentials;

int herald_epoll_create(void);
/// Adds (op 1), modifies (op 3) or removes (op 2) `fd` with `events` and opaque `data`.
int herald_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
int herald_epoll_wait(int epfd, herald_event *events, int capacity, int timeout_ms);

/// A new AF_UNIX SOCK_STREAM socket, close-on-exec, optionally nonblocking.
int herald_unix_stream_socket(int nonblocking);

/// Binds `fd` to `name`. When `abstract` is non-zero the name is placed in the abstract
/// namespace with the exact address length (offsetof(sun_path) + 1 + length), never padded.
int herald_unix_bind(int fd, const char *name, size_t length, int abstract);
int herald_unix_connect(int fd, const char *name, size_t length, int abstract);

/// The address a Unix socket is bound to: writes the name (without the abstract
/// namespace's leading NUL, without a path's trailing NUL) to `out`, sets `*abstract`, and
/// returns its length; -1 if `fd` is not a bound AF_UNIX socket (errno set).
int herald_unix_socket_name(int fd, char *out, size_t capacity, int *abstract);

/// Whether something accepts connections on a filesystem socket path (1), nothing does (0).
int herald_unix_path_is_live(const char *path);

/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC.
int herald_accept(int listen_fd);

/// SO_PEERCRED of a connected Unix socket.
int herald_peer_credentials_of(int fd, herald_peer_credentials *out);

/// A pidfd for the process at the other end of a connected Unix socket: SO_PEERPIDFD
/// (Linux 6.5+, the process that connected, whatever happened to its pid since), else
/// pidfd_open(pid) (Linux 5.3+; right after accept, so the pid is very unlikely to have been
/// reused). It becomes readable when the process exits. -1 if neither works (errno set).
int herald_peer_pidfd(int fd, int pid);

/// SO_PEERGROUPS (Linux 4.13+) of a connected Unix socket: the peer's supplementary groups
/// as the kernel recorded them at connect. Stores up to `capacity` gids and returns how
/// many the peer has (more than `capacity` means the list was cut: call again with room);
/// -1 on error (errno set; ENOPROTOOPT on kernels without it).
int herald_peer_groups_of(int fd, uint32_t *groups, int capacity);

/// Blocks SIGINT, SIGTERM and SIGHUP for the calling thread (call before starting threads) and returns a
/// nonblocking signalfd that reports the first three. The returned fd reports them.
int herald_signalfd_for_shutdown(void);
/// Reads one pending signal number from a signalfd, 0 if none.
int herald_signalfd_read(int fd);

/// Ignores SIGPIPE process-wide so a write to a closed peer returns EPIPE.
void herald_ignore_sigpipe(void);

int herald_eventfd(void);
int herald_eventfd_signal(int fd);
int herald_eventfd_drain(int fd);

/// Sets or clears O_NONBLOCK.
int herald_set_nonblocking(int fd, int nonblocking);

/// Counts the open file descriptors of this process (entries of /proc/self/fd).
int herald_count_open_fds(void);

/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34; needs _GNU_SOURCE, which Swift's
/// Glibc module does not define): the child closes every descriptor from `lowest` up.
int herald_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest);

int herald_errno(void);

/// Names the calling thread (at most 15 bytes are kept), for top -H, gdb and perf.
int herald_set_thread_name(const char *name);

/// A memfd (close-on-exec) named `name` holding `count` bytes, sealed against writing,
/// growing and shrinking (and against further seals), so whoever receives it can trust its
/// content not to change. Returns the descriptor, or -1 with errno set.
int herald_sealed_memfd(const char *name, const void *bytes, size_t count);

/// Whether `fd` is a memfd sealed against writing, growing and shrinking: 1 yes, 0 no
/// (not a memfd, or not sealed), -1 on error.
int herald_memfd_is_sealed(int fd);

/// Receives one datagram of at most `capacity` bytes on `fd` together with up to
/// `fd_capacity` descriptors passed with SCM_RIGHTS (close-on-exec); `*fd_count` is set to
/// how many. Returns the datagram's length, or -1 with errno set.
ssize_t herald_recv_with_fds(int fd, void *buffer, size_t capacity, int *fds, int fd_capacity, int *fd_count);

/// Reads a stream socket with recvmsg (close-on-exec for received descriptors; blocking as the socket is).
/// With `fds` NULL there is no room for control messages: descriptors a peer sends are
/// closed by the kernel and `*truncated` says so (MSG_CTRUNC). Otherwise up to
/// `fd_capacity` passed descriptors are stored in `fds` (`*fd_count` of them) and any
/// beyond are closed, also setting `*truncated`. Returns the bytes read, or -1 with errno set.
ssize_t herald_recv_stream(int fd, void *buffer, size_t capacity, int *fds, int fd_capacity, int *fd_count, int *truncated);

/// Sends `count` bytes on a stream socket with `fd_count` (1 to 253) descriptors as one
/// SCM_RIGHTS control message on their first byte (MSG_NOSIGNAL; blocking as the socket is). Returns the
/// bytes sent (the descriptors went with the first), or -1 with errno set (none went).
ssize_t herald_send_with_fds(int fd, const void *buffer, size_t count, const int *fds, int fd_count);

/// As herald_send_with_fds, but never blocks (MSG_DONTWAIT): -1 with EAGAIN when the socket
/// is full, and then no byte and no descriptor went.
ssize_t herald_send_with_fds_nowait(int fd, const void *buffer, size_t count, const int *fds, int fd_count);

/// A new memfd (close-on-exec, sealing allowed, not yet sealed) of `count` bytes, mapped
/// read-write into `*mapping` (NULL when `count` is 0), for a payload to be written in
/// place. Returns the descriptor, or -1 with errno set (nothing left open or mapped).
int herald_memfd_create_mapped(const char *name, size_t count, void **mapping);

/// Seals `fd` against writing, growing, shrinking and further seals. Every writable mapping
/// of it must be gone first (the kernel refuses F_SEAL_WRITE with EBUSY otherwise).
/// Returns 0, or -1 with errno set.
int herald_memfd_seal(int fd);

/// Maps a received payload memfd read-only after checking that it is sealed against
/// writing, growing and shrinking (so its bytes cannot change under the reader). Sets
/// `*size` to its size and `*mapping` to the mapping (NULL for size 0). Returns 0; 1 if the
/// descriptor is not such a sealed memfd; -1 with errno set if it cannot be inspected or mapped.
int herald_map_sealed_memfd(int fd, void **mapping, size_t *size);

#ifdef __cplusplus
}
#endif

#endif
