// See CHeraldSys.h. Thin wrappers only: no policy lives here.
#define _GNU_SOURCE
#include "CHeraldSys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <pthread.h>
#include <spawn.h>

int herald_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int herald_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}

int herald_epoll_wait(int epfd, herald_event *events, int capacity, int timeout_ms) {
    enum { BATCH = 256 };
    struct epoll_event raw[BATCH];
    if (capacity > BATCH) capacity = BATCH;
    int n;
    do {
        n = epoll_wait(epfd, raw, capacity, timeout_ms);
    } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) {
        events[i].events = raw[i].events;
        events[i].data = raw[i].data.u64;
    }
    return n;
}

int herald_unix_stream_socket(int nonblocking) {
    int type = SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
    return socket(AF_UNIX, type, 0);
}

static int fill_address(struct sockaddr_un *addr, socklen_t *len, const char *name, size_t length, int abstract) {
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    size_t capacity = sizeof addr->sun_path - (abstract ? 1 : 1); // abstract: leading NUL; path: trailing NUL
    if (length == 0 || length > capacity) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (abstract) {
        memcpy(addr->sun_path + 1, name, length);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + length);
    } else {
        memcpy(addr->sun_path, name, length);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + length + 1);
    }
    return 0;
}

int herald_unix_bind(int fd, const char *name, size_t length, int abstract) {
    struct sockaddr_un addr;
    socklen_t len;
    if (fill_address(&addr, &len, name, length, abstract) < 0) return -1;
    return bind(fd, (struct sockaddr *)&addr, len);
}

int herald_unix_connect(int fd, const char *name, size_t length, int abstract) {
    struct sockaddr_un addr;
    socklen_t len;
    if (fill_address(&addr, &len, name, length, abstract) < 0) return -1;
    int rc;
    do {
        rc = connect(fd, (struct sockaddr *)&addr, len);
    } while (rc < 0 && errno == EINTR);
    return rc;
}

int herald_unix_socket_name(int fd, char *out, size_t capacity, int *abstract) {
    struct sockaddr_un addr;
    socklen_t len = sizeof addr;
    memset(&addr, 0, sizeof addr);
    if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0) return -1;
    if (addr.sun_family != AF_UNIX || len <= offsetof(struct sockaddr_un, sun_path)) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    size_t n = len - offsetof(struct sockaddr_un, sun_path);
    const char *name = addr.sun_path;
    *abstract = addr.sun_path[0] == '\0';
    if (*abstract) {
        name++;
        n--;
    } else {
        n = strnlen(addr.sun_path, n);
    }
    if (n > capacity) n = capacity;
    memcpy(out, name, n);
    return (int)n;
}

int herald_unix_path_is_live(const char *path) {
    int fd = herald_unix_stream_socket(0);
    if (fd < 0) return -1;
    int rc = herald_unix_connect(fd, path, strlen(path), 0);
    int saved = errno;
    close(fd);
    if (rc == 0) return 1;
    if (saved == ECONNREFUSED || saved == ENOENT) return 0;
    errno = saved;
    return -1;
}

int herald_accept(int listen_fd) {
    int fd;
    do {
        fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

int herald_peer_credentials_of(int fd, herald_peer_credentials *out) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return -1;
    out->pid = cred.pid;
    out->uid = cred.uid;
    out->gid = cred.gid;
    return 0;
}

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#include <sys/syscall.h>
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int herald_peer_pidfd(int fd, int pid) {
    int pidfd = -1;
    socklen_t len = sizeof pidfd;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 && pidfd >= 0) {
        fcntl(pidfd, F_SETFD, FD_CLOEXEC);
        return pidfd;
    }
    if (errno == EMFILE || errno == ENFILE) return -1;
    // pidfd_open's descriptors are close-on-exec already.
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

int herald_peer_groups_of(int fd, uint32_t *groups, int capacity) {
    socklen_t len = (socklen_t)(capacity * (int)sizeof(uint32_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
        // ERANGE: the list is longer than `capacity`; the kernel reports the length needed.
        if (errno == ERANGE) return (int)(len / sizeof(uint32_t));
        return -1;
    }
    return (int)(len / sizeof(uint32_t));
}

int herald_signalfd_for_shutdown(void) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0) return -1;
    return signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
}

int herald_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof info);
    if (n != (ssize_t)sizeof info) return 0;
    return (int)info.ssi_signo;
}

void herald_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

int herald_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int herald_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(fd, &one, sizeof one);
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof one || errno == EAGAIN ? 0 : -1;
}

int herald_eventfd_drain(int fd) {
    uint64_t value;
    ssize_t n = read(fd, &value, sizeof value);
    return n < 0 && errno != EAGAIN ? -1 : 0;
}

int herald_set_nonblocking(int fd, int nonblocking) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    flags = nonblocking ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, flags);
}

int herald_count_open_fds(void) {
    DIR *dir = opendir("/proc/self/fd");
    if (!dir) return -1;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] != '.') count++;
    }
    closedir(dir);
    return count - 1; // the directory stream's own descriptor
}

int herald_errno(void) { return errno; }

int herald_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
}

int herald_set_thread_name(const char *name) {
    char truncated[16];
    strncpy(truncated, name, sizeof truncated - 1);
    truncated[sizeof truncated - 1] = '\0';
    int rc = pthread_setname_np(pthread_self(), truncated);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}

int herald_sealed_memfd(const char *name, const void *bytes, size_t count) {
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    const char *cursor = bytes;
    size_t left = count;
    while (left > 0) {
        ssize_t n = write(fd, cursor, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int saved = errno;
            close(fd);
            errno = n == 0 ? EIO : saved;
            return -1;
        }
        cursor += n;
        left -= (size_t)n;
    }
    if (herald_memfd_seal(fd) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int herald_memfd_is_sealed(int fd) {
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0) return errno == EINVAL ? 0 : -1;
    int needed = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;
    return (seals & needed) == needed ? 1 : 0;
}

ssize_t herald_recv_with_fds(int fd, void *buffer, size_t capacity, int *fds, int fd_capacity, int *fd_count) {
    int truncated;
    return herald_recv_stream(fd, buffer, capacity, fds, fd_capacity, fd_count, &truncated);
}

ssize_t herald_recv_stream(int fd, void *buffer, size_t capacity, int *fds, int fd_capacity, int *fd_count, int *truncated) {
    *fd_count = 0;
    *truncated = 0;
    struct iovec iov = {.iov_base = buffer, .iov_len = capacity};
    union {
        char bytes[CMSG_SPACE(sizeof(int) * 253)];
        struct cmsghdr align;
    } control;
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fds != NULL) {
        message.msg_control = control.bytes;
        message.msg_controllen = sizeof control.bytes;
    }
    ssize_t n = recvmsg(fd, &message, MSG_CMSG_CLOEXEC);
    if (n < 0) return -1;
    if (message.msg_flags & MSG_CTRUNC) *truncated = 1;
    if (fds == NULL) return n;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *passed = (int *)CMSG_DATA(header);
        for (int index = 0; index < count; index++) {
            if (*fd_count < fd_capacity) {
                fds[(*fd_count)++] = passed[index];
            } else {
                close(passed[index]);  // more than the caller has room for: never leaked
                *truncated = 1;
            }
        }
    }
    return n;
}

static ssize_t send_with_fds(int fd, const void *buffer, size_t count, const int *fds, int fd_count, int flags) {
    struct iovec iov = {.iov_base = (void *)buffer, .iov_len = count};
    union {
        char bytes[CMSG_SPACE(sizeof(int) * 253)];
        struct cmsghdr align;
    } control;
    if (fd_count < 1 || fd_count > 253) {
        errno = EINVAL;
        return -1;
    }
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1};
    message.msg_control = control.bytes;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)fd_count);
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)fd_count);
    memcpy(CMSG_DATA(header), fds, sizeof(int) * (size_t)fd_count);
    return sendmsg(fd, &message, flags);
}

ssize_t herald_send_with_fds(int fd, const void *buffer, size_t count, const int *fds, int fd_count) {
    return send_with_fds(fd, buffer, count, fds, fd_count, MSG_NOSIGNAL);
}

ssize_t herald_send_with_fds_nowait(int fd, const void *buffer, size_t count, const int *fds, int fd_count) {
    return send_with_fds(fd, buffer, count, fds, fd_count, MSG_NOSIGNAL | MSG_DONTWAIT);
}

int herald_memfd_create_mapped(const char *name, size_t count, void **mapping) {
    *mapping = NULL;
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    if (count > 0) {
        void *bytes = MAP_FAILED;
        if (ftruncate(fd, (off_t)count) == 0) bytes = mmap(NULL, count, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (bytes == MAP_FAILED) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        *mapping = bytes;
    }
    return fd;
}

int herald_memfd_seal(int fd) {
    return fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
}

int herald_map_sealed_memfd(int fd, void **mapping, size_t *size) {
    *mapping = NULL;
    *size = 0;
    int sealed = herald_memfd_is_sealed(fd);
    if (sealed != 1) return sealed == 0 ? 1 : -1;
    struct stat status;
    if (fstat(fd, &status) != 0) return -1;
    if (status.st_size <= 0) return 0;
    void *bytes = mmap(NULL, (size_t)status.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (bytes == MAP_FAILED) return -1;
    *mapping = bytes;
    *size = (size_t)status.st_size;
    return 0;
}
