/* driver.c - workload driver shared by every bench-<peer> binary.
 *
 * usage: bench-<peer> --addr ADDR --mode tput|lat|rr [--pubs P] [--subs S]
 *          [--n N] [--size BYTES] [--broker-pid PID] [--idle-ms MS]
 *          [--deadline-s S] [--warmup W]
 *
 * tput: S subscriber processes subscribe to "bench.a" (broker-confirmed
 *   where the protocol allows), then P publisher processes connect and
 *   publish sync messages every 10 ms until every subscriber has seen a
 *   sync message from every publisher (start barrier; this also covers
 *   ZeroMQ, whose subscriptions are not acknowledged).  Then each
 *   publisher sends N data messages of BYTES bytes back to back (batched
 *   writes, no acks).  Each subscriber counts data messages and records
 *   the time of the first and last one.  A subscriber stops when it has
 *   P*N messages, or 'idle-ms' after the publishers finished with nothing
 *   more arriving, or when the broker closes its connection.
 * lat: a ponger subscribes to "bench.ping" and republishes every message
 *   on "bench.pong"; a pinger subscribes to "bench.pong", sends one
 *   ping, waits for its pong, W warm-up round trips then N measured.
 * rr: lat with the transport's request/reply instead of two topics
 *   (Herald REQUEST/REPLY, NATS request with a reply inbox, a D-Bus method
 *   call): a responder serves "bench.rr" and answers each request with its
 *   own payload; a requester sends one request, waits for its answer, W
 *   warm-up requests then N measured (workload W8).
 *
 * All clients are separate processes.  The parent samples the broker's
 * CPU time and RSS from /proc every 20 ms.  Prints one "RESULT k=v ..."
 * line on stdout.
 *
 * (Herald repository copy: the tput RESULT line also carries sub_extra /
 * sub_extras, the subscribers' tp_extra() values, next to the publishers'
 * "extra"; t_herald.c reports the messages announced lost by DROPPED
 * notices there.  Nothing else differs from the original harness.) */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXCH 64

static const char *g_addr;
static int g_pubs = 1, g_subs = 1, g_lat = 0, g_rr = 0;
static unsigned long long g_n = 100000;
static size_t g_size = 64;
static int g_broker_pid = 0;
static int g_idle_ms = 2000;
static int g_deadline_s = 120;
static unsigned long long g_warmup = 1000;
static int g_stall_ms = 0; /* subscriber 0 stops reading this long after its first data message */
static const char *TOPIC = "bench.a";
static const char *TOPIC_PING = "bench.ping";
static const char *TOPIC_PONG = "bench.pong";
static const char *TOPIC_RR = "bench.rr";

/* ---------- child <-> parent messages (fixed size, atomic pipe writes) */
struct sub_result {
    unsigned long long count, syncs, gaps, ooo, bad;
    unsigned long long first, last; /* ns, CLOCK_MONOTONIC */
    double cpu_s;
    int disconnected, timed_out;
    long long extra; /* tp_extra() of the subscriber connection (added for Herald's DROPPED counts) */
};
struct pub_result {
    unsigned long long sent, t0, t1;
    double cpu_s;
    long long extra;
    int err;
};
struct lat_result {
    unsigned long long n, lost;
    double min_us, mean_us, p50_us, p90_us, p99_us, p999_us, max_us;
    double cpu_s;
    unsigned long long echoed;
    int err;
};
struct cmsg {
    char tag; /* R subscribed, Y ready, C connected, F failed, = result */
    union { struct sub_result s; struct pub_result p; struct lat_result l; } u;
};

static void send_msg(int fd, const struct cmsg *m)
{
    ssize_t w;
    do { w = write(fd, m, sizeof *m); } while (w < 0 && errno == EINTR);
}
static void send_tag(int fd, char tag)
{
    struct cmsg m;
    memset(&m, 0, sizeof m);
    m.tag = tag;
    send_msg(fd, &m);
}
/* non-blocking check for a parent command byte; 0 if none */
static char poll_cmd(int fd, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, timeout_ms) <= 0) return 0;
    char c;
    ssize_t r = read(fd, &c, 1);
    if (r == 1) return c;
    if (r == 0) return 'Q'; /* parent gone */
    return 0;
}

static double cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void ignore_msg(void *ctx, const uint8_t *d, size_t n) { (void)ctx; (void)d; (void)n; }

/* ---------------------------------------------------------- subscriber */
struct substate {
    unsigned long long count, syncs, gaps, ooo, bad;
    unsigned long long first, last_any;
    uint64_t syncmask;
    unsigned long long next[MAXCH];
};

static void on_sub_msg(void *ctx, const uint8_t *d, size_t n)
{
    struct substate *s = ctx;
    if (n < sizeof(struct bench_hdr)) { s->bad++; return; }
    const struct bench_hdr *h = (const struct bench_hdr *)d;
    if (h->kind == 'D' && n == g_size) {
        if (s->count++ == 0) s->first = now_ns();
        unsigned p = h->pub % MAXCH;
        if (h->seq != s->next[p]) {
            if (h->seq > s->next[p]) s->gaps += h->seq - s->next[p];
            else s->ooo++;
        }
        s->next[p] = h->seq + 1;
    } else if (h->kind == 'S') {
        s->syncs++;
        s->syncmask |= 1ull << (h->pub % MAXCH);
    } else {
        s->bad++;
    }
}

static void sub_main(int idx, int cmd_fd, int res_fd)
{
    char name[64];
    snprintf(name, sizeof name, "bench-sub-%d-%d", idx, (int)getpid());
    struct conn *c = tp_connect(g_addr, name, 0);
    if (!c || tp_subscribe(c, TOPIC) < 0) { send_tag(res_fd, 'F'); _exit(1); }
    send_tag(res_fd, 'R');
    static struct substate st;
    unsigned long long expected = (unsigned long long)g_pubs * g_n;
    uint64_t allmask = g_pubs >= 64 ? ~0ull : ((1ull << g_pubs) - 1);
    int ready = 0, pubs_done = 0, disc = 0, timed_out = 0;
    unsigned long long t_done = 0, last = 0;
    double cpu0 = 0;
    int stalled = 0, cpu_started = 0;
    uint64_t deadline = now_ns() + (uint64_t)g_deadline_s * 1000000000ull;
    for (;;) {
        if (idx == 0 && g_stall_ms > 0 && !stalled && st.count > 0) {
            /* simulated consumer pause: stop reading, the broker must
             * buffer, drop, disconnect us or push back on the publisher */
            stalled = 1;
            usleep((useconds_t)g_stall_ms * 1000u);
            uint64_t t = now_ns();
            if (st.last_any < t) st.last_any = t;
        }
        unsigned long long before = st.count, before_all = st.count + st.syncs + st.bad;
        int r = tp_poll(c, 50, on_sub_msg, &st);
        uint64_t t = now_ns();
        if (r < 0) { disc = 1; break; }
        if (st.count != before) last = t;
        if (st.count + st.syncs + st.bad != before_all) st.last_any = t;
        if (!ready && (st.syncmask & allmask) == allmask) {
            ready = 1;
            send_tag(res_fd, 'Y');
        }
        if (!cpu_started && st.count > 0) { /* CPU accounting from the first data message on */
            cpu_started = 1;
            cpu0 = cpu_self();
        }
        char cmd = poll_cmd(cmd_fd, 0);
        if (cmd == 'D') { pubs_done = 1; t_done = t; }
        if (cmd == 'Q') break;
        if (st.count >= expected) break;
        if (pubs_done) {
            unsigned long long ref = st.last_any > t_done ? st.last_any : t_done;
            if (t - ref > (uint64_t)g_idle_ms * 1000000ull) break;
        }
        if (t > deadline) { timed_out = 1; break; }
    }
    struct cmsg m;
    memset(&m, 0, sizeof m);
    m.tag = '=';
    m.u.s.count = st.count; m.u.s.syncs = st.syncs; m.u.s.gaps = st.gaps;
    m.u.s.ooo = st.ooo; m.u.s.bad = st.bad;
    m.u.s.first = st.first; m.u.s.last = last;
    m.u.s.cpu_s = cpu_started ? cpu_self() - cpu0 : 0;
    m.u.s.disconnected = disc; m.u.s.timed_out = timed_out;
    m.u.s.extra = tp_extra(c);
    send_msg(res_fd, &m);
    /* stay connected (and keep reading) until the parent says quit */
    for (;;) {
        char cmd = poll_cmd(cmd_fd, 0);
        if (cmd == 'Q') break;
        if (disc) { poll_cmd(cmd_fd, 50); continue; }
        if (tp_poll(c, 20, ignore_msg, NULL) < 0) disc = 1;
    }
    tp_close(c);
    _exit(0);
}

/* ----------------------------------------------------------- publisher */
static void pub_main(int idx, int cmd_fd, int res_fd)
{
    char name[64];
    snprintf(name, sizeof name, "bench-pub-%d-%d", idx, (int)getpid());
    struct conn *c = tp_connect(g_addr, name, 1);
    if (!c) { send_tag(res_fd, 'F'); _exit(1); }
    send_tag(res_fd, 'C');
    uint8_t *buf = malloc(g_size);
    memset(buf, 'x', g_size);
    struct bench_hdr *h = (struct bench_hdr *)buf;
    memset(h, 0, sizeof *h);
    h->pub = (uint8_t)idx;
    h->kind = 'S';
    uint64_t deadline = now_ns() + 30000000000ull;
    unsigned long long sseq = 0;
    for (;;) { /* sync phase */
        h->seq = sseq++;
        if (tp_publish(c, TOPIC, buf, g_size) < 0 || tp_flush(c) < 0) { send_tag(res_fd, 'F'); _exit(1); }
        if (tp_poll(c, 0, ignore_msg, NULL) < 0) { send_tag(res_fd, 'F'); _exit(1); }
        char cmd = poll_cmd(cmd_fd, 10);
        if (cmd == 'G') break;
        if (cmd == 'Q' || now_ns() > deadline) { send_tag(res_fd, 'F'); _exit(1); }
    }
    struct cmsg m;
    memset(&m, 0, sizeof m);
    m.tag = '=';
    double cpu0 = cpu_self();
    uint64_t t0 = now_ns();
    h->kind = 'D';
    unsigned long long i;
    int err = 0;
    for (i = 0; i < g_n; i++) {
        h->seq = i;
        if (tp_publish(c, TOPIC, buf, g_size) < 0) { err = 1; break; }
    }
    if (!err && tp_flush(c) < 0) err = 1;
    uint64_t t1 = now_ns();
    m.u.p.sent = i; m.u.p.t0 = t0; m.u.p.t1 = t1;
    m.u.p.cpu_s = cpu_self() - cpu0;
    m.u.p.err = err;
    m.u.p.extra = tp_extra(c);
    send_msg(res_fd, &m);
    for (;;) {
        char cmd = poll_cmd(cmd_fd, 0);
        if (cmd == 'Q') break;
        if (err || tp_poll(c, 20, ignore_msg, NULL) < 0) { err = 1; poll_cmd(cmd_fd, 50); }
    }
    tp_close(c);
    _exit(0);
}

/* ------------------------------------------------------------- latency */
struct pongctx { struct conn *c; unsigned long long echoed; int err; };
static void on_ping(void *ctx, const uint8_t *d, size_t n)
{
    struct pongctx *p = ctx;
    if ((g_rr ? tp_reply(p->c, d, n) : tp_publish(p->c, TOPIC_PONG, d, n)) < 0) p->err = 1;
    p->echoed++;
}

static void ponger_main(int cmd_fd, int res_fd)
{
    char name[64];
    snprintf(name, sizeof name, "bench-pong-%d", (int)getpid());
    struct conn *c = tp_connect(g_addr, name, 0);
    if (!c || (g_rr ? tp_serve(c, TOPIC_RR) : tp_subscribe(c, TOPIC_PING)) < 0) { send_tag(res_fd, 'F'); _exit(1); }
    send_tag(res_fd, 'R');
    struct pongctx pc = { c, 0, 0 };
    double cpu0 = cpu_self();
    for (;;) {
        int r = tp_poll(c, 20, on_ping, &pc);
        if (r < 0 || pc.err) { pc.err = 1; break; }
        if (r > 0 && tp_flush(c) < 0) { pc.err = 1; break; }
        if (poll_cmd(cmd_fd, 0) == 'Q') break;
    }
    struct cmsg m;
    memset(&m, 0, sizeof m);
    m.tag = '=';
    m.u.l.echoed = pc.echoed;
    m.u.l.cpu_s = cpu_self() - cpu0;
    m.u.l.err = pc.err;
    send_msg(res_fd, &m);
    while (poll_cmd(cmd_fd, 50) != 'Q') {}
    tp_close(c);
    _exit(0);
}

struct pingctx { unsigned long long want; int kind_want; int got; uint64_t t1; };
static void on_pong(void *ctx, const uint8_t *d, size_t n)
{
    struct pingctx *p = ctx;
    if (n < sizeof(struct bench_hdr)) return;
    const struct bench_hdr *h = (const struct bench_hdr *)d;
    if (p->kind_want == 'S') { if (h->kind == 'S') { p->got = 1; p->t1 = now_ns(); } return; }
    if (h->kind == p->kind_want && h->seq == p->want) { p->got = 1; p->t1 = now_ns(); }
}

/* One ping: a publish on bench.ping, or (rr) a request on bench.rr. */
static int send_ping(struct conn *c, const uint8_t *buf)
{
    return g_rr ? tp_request(c, TOPIC_RR, buf, g_size) : tp_publish(c, TOPIC_PING, buf, g_size);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void pinger_main(int cmd_fd, int res_fd)
{
    char name[64];
    snprintf(name, sizeof name, "bench-ping-%d", (int)getpid());
    struct conn *c = tp_connect(g_addr, name, 0);
    /* rr: the answers come back on the request itself (a NATS inbox is set up by the first request) */
    if (!c || (!g_rr && tp_subscribe(c, TOPIC_PONG) < 0)) { send_tag(res_fd, 'F'); _exit(1); }
    send_tag(res_fd, 'R');
    for (;;) { /* wait for go, keep the connection serviced */
        char cmd = poll_cmd(cmd_fd, 0);
        if (cmd == 'G') break;
        if (cmd == 'Q') _exit(1);
        if (tp_poll(c, 20, ignore_msg, NULL) < 0) { send_tag(res_fd, 'F'); _exit(1); }
    }
    uint8_t *buf = malloc(g_size);
    memset(buf, 'x', g_size);
    struct bench_hdr *h = (struct bench_hdr *)buf;
    memset(h, 0, sizeof *h);
    struct pingctx pc;
    memset(&pc, 0, sizeof pc);
    /* sync: until one ping made the full round trip */
    h->kind = 'S';
    pc.kind_want = 'S';
    uint64_t deadline = now_ns() + 30000000000ull;
    while (!pc.got) {
        h->seq++;
        if (send_ping(c, buf) < 0 || tp_flush(c) < 0) { send_tag(res_fd, 'F'); _exit(1); }
        uint64_t until = now_ns() + 20000000ull;
        while (!pc.got && now_ns() < until)
            if (tp_poll(c, 5, on_pong, &pc) < 0) { send_tag(res_fd, 'F'); _exit(1); }
        if (now_ns() > deadline) { send_tag(res_fd, 'F'); _exit(1); }
    }
    /* drain late sync pongs */
    uint64_t until = now_ns() + 100000000ull;
    while (now_ns() < until) tp_poll(c, 10, ignore_msg, NULL);

    uint64_t *rtt = malloc(sizeof(uint64_t) * (g_n + 1));
    unsigned long long got = 0, lost = 0;
    double cpu0 = cpu_self();
    h->kind = 'P';
    pc.kind_want = 'P';
    int err = 0;
    for (unsigned long long i = 0; i < g_warmup + g_n && !err; i++) {
        h->seq = i;
        pc.want = i;
        pc.got = 0;
        uint64_t t0 = now_ns();
        h->ts = t0;
        if (send_ping(c, buf) < 0 || tp_flush(c) < 0) { err = 1; break; }
        uint64_t dl = t0 + 1000000000ull;
        while (!pc.got) {
            uint64_t t = now_ns();
            if (t >= dl) break;
            if (tp_poll(c, (int)((dl - t) / 1000000 + 1), on_pong, &pc) < 0) { err = 1; break; }
        }
        if (!pc.got) { if (i >= g_warmup) lost++; continue; }
        if (i >= g_warmup) rtt[got++] = pc.t1 - t0;
    }
    struct cmsg m;
    memset(&m, 0, sizeof m);
    m.tag = '=';
    m.u.l.cpu_s = cpu_self() - cpu0;
    m.u.l.n = got; m.u.l.lost = lost; m.u.l.err = err;
    if (got > 0) {
        qsort(rtt, got, sizeof *rtt, cmp_u64);
        double sum = 0;
        for (unsigned long long i = 0; i < got; i++) sum += (double)rtt[i];
#define PCT(q) ((double)rtt[(unsigned long long)((q) * (double)(got - 1) + 0.5)] / 1000.0)
        m.u.l.min_us = rtt[0] / 1000.0;
        m.u.l.mean_us = sum / (double)got / 1000.0;
        m.u.l.p50_us = PCT(0.50);
        m.u.l.p90_us = PCT(0.90);
        m.u.l.p99_us = PCT(0.99);
        m.u.l.p999_us = PCT(0.999);
        m.u.l.max_us = rtt[got - 1] / 1000.0;
    }
    send_msg(res_fd, &m);
    while (poll_cmd(cmd_fd, 0) != 'Q') tp_poll(c, 20, ignore_msg, NULL);
    tp_close(c);
    _exit(0);
}

/* -------------------------------------------------------------- parent */
struct child {
    pid_t pid;
    int cmd, res;
    int role; /* 's' sub, 'p' pub, 'o' ponger, 'i' pinger */
    int subscribed, ready, connected, failed, done;
    struct cmsg result;
};
static struct child ch[MAXCH + 4];
static int nch;

/* broker samples */
#define MAXS 20000
static struct { uint64_t t; long ticks; long rss_kb; long long sys_busy, sys_steal; } smp[MAXS];
static int nsmp;
static long clk_tck;

static int read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t r = read(fd, buf, cap - 1);
    close(fd);
    if (r < 0) return -1;
    buf[r] = 0;
    return (int)r;
}

static void sample(void)
{
    if (!g_broker_pid || nsmp >= MAXS) return;
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", g_broker_pid);
    if (read_file(path, buf, sizeof buf) < 0) return;
    char *p = strrchr(buf, ')');
    if (!p) return;
    /* fields after ')': state(3) ... utime(14) stime(15) */
    long ut = 0, st = 0;
    int field = 2;
    for (char *q = p + 1; *q; q++) {
        if (*q == ' ') {
            field++;
            if (field == 14) ut = strtol(q + 1, NULL, 10);
            if (field == 15) { st = strtol(q + 1, NULL, 10); break; }
        }
    }
    snprintf(path, sizeof path, "/proc/%d/statm", g_broker_pid);
    long rss = 0;
    if (read_file(path, buf, sizeof buf) > 0) {
        long size_pages, res_pages;
        if (sscanf(buf, "%ld %ld", &size_pages, &res_pages) == 2) rss = res_pages * (sysconf(_SC_PAGESIZE) / 1024);
    }
    /* whole machine: busy and steal jiffies from the first line of /proc/stat */
    long long busy = 0, steal = 0;
    if (read_file("/proc/stat", buf, sizeof buf) > 0) {
        long long v[10] = {0};
        if (sscanf(buf, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]) >= 8) {
            busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]; /* user nice system irq softirq steal */
            steal = v[7];
        }
    }
    smp[nsmp].t = now_ns();
    smp[nsmp].ticks = ut + st;
    smp[nsmp].rss_kb = rss;
    smp[nsmp].sys_busy = busy;
    smp[nsmp].sys_steal = steal;
    nsmp++;
}

static long broker_hwm_kb(void)
{
    if (!g_broker_pid) return -1;
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", g_broker_pid);
    if (read_file(path, buf, sizeof buf) < 0) return -1;
    char *p = strstr(buf, "VmHWM:");
    return p ? strtol(p + 6, NULL, 10) : -1;
}

/* broker CPU% (of one core) between t0 and t1 using bracketing samples */
static double broker_cpu(uint64_t t0, uint64_t t1)
{
    int a = -1, b = -1;
    for (int i = 0; i < nsmp; i++) {
        if (smp[i].t <= t0) a = i;
        if (smp[i].t >= t1 && b < 0) b = i;
    }
    if (a < 0) a = 0;
    if (b < 0) b = nsmp - 1;
    if (nsmp < 2 || b <= a) return -1;
    double secs = (double)(smp[b].t - smp[a].t) / 1e9;
    return 100.0 * (double)(smp[b].ticks - smp[a].ticks) / (double)clk_tck / secs;
}

/* whole-machine busy% and steal% (of one core) between t0 and t1 */
static void sys_cpu(uint64_t t0, uint64_t t1, double *busy, double *steal)
{
    int a = -1, b = -1;
    *busy = *steal = -1;
    for (int i = 0; i < nsmp; i++) {
        if (smp[i].t <= t0) a = i;
        if (smp[i].t >= t1 && b < 0) b = i;
    }
    if (a < 0) a = 0;
    if (b < 0) b = nsmp - 1;
    if (nsmp < 2 || b <= a) return;
    double secs = (double)(smp[b].t - smp[a].t) / 1e9;
    *busy = 100.0 * (double)(smp[b].sys_busy - smp[a].sys_busy) / (double)clk_tck / secs;
    *steal = 100.0 * (double)(smp[b].sys_steal - smp[a].sys_steal) / (double)clk_tck / secs;
}

static long rss_peak(uint64_t t0)
{
    long m = 0;
    for (int i = 0; i < nsmp; i++)
        if (smp[i].t >= t0 && smp[i].rss_kb > m) m = smp[i].rss_kb;
    return m;
}
static long rss_at(uint64_t t0)
{
    long v = 0;
    for (int i = 0; i < nsmp; i++) { if (smp[i].t <= t0) v = smp[i].rss_kb; else break; }
    if (!v && nsmp) v = smp[0].rss_kb;
    return v;
}

static void kill_all(void)
{
    for (int i = 0; i < nch; i++)
        if (ch[i].pid > 0) kill(ch[i].pid, SIGKILL);
}

static void on_alarm(int sig)
{
    (void)sig;
    kill_all();
    static const char msg[] = "RESULT status=deadline\n";
    ssize_t w = write(1, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

static int spawn(int role, int idx)
{
    int cp[2], rp[2];
    if (pipe2(cp, O_CLOEXEC) < 0 || pipe2(rp, O_CLOEXEC) < 0) { perror("pipe"); exit(2); }
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(2); }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGALRM, SIG_DFL);
        alarm(0);
        close(cp[1]); close(rp[0]);
        for (int i = 0; i < nch; i++) { close(ch[i].cmd); close(ch[i].res); }
        switch (role) {
        case 's': sub_main(idx, cp[0], rp[1]); break;
        case 'p': pub_main(idx, cp[0], rp[1]); break;
        case 'o': ponger_main(cp[0], rp[1]); break;
        case 'i': pinger_main(cp[0], rp[1]); break;
        }
        _exit(0);
    }
    close(cp[0]); close(rp[1]);
    struct child *c = &ch[nch];
    memset(c, 0, sizeof *c);
    c->pid = pid; c->cmd = cp[1]; c->res = rp[0]; c->role = role;
    return nch++;
}

static void cmd_all(int role, char cmd)
{
    for (int i = 0; i < nch; i++)
        if (role == 0 || ch[i].role == role) {
            ssize_t w = write(ch[i].cmd, &cmd, 1);
            (void)w;
        }
}

/* wait (sampling the broker) for up to timeout_ms; handle child messages */
static void pump(int timeout_ms)
{
    struct pollfd pf[MAXCH + 4];
    int map[MAXCH + 4], n = 0;
    for (int i = 0; i < nch; i++)
        if (!ch[i].done && !ch[i].failed) { pf[n].fd = ch[i].res; pf[n].events = POLLIN; map[n++] = i; }
    int r = poll(pf, (nfds_t)n, timeout_ms);
    sample();
    if (r <= 0) return;
    for (int k = 0; k < n; k++) {
        if (!(pf[k].revents & (POLLIN | POLLHUP))) continue;
        struct child *c = &ch[map[k]];
        struct cmsg m;
        ssize_t rd = read(c->res, &m, sizeof m);
        if (rd != (ssize_t)sizeof m) { c->failed = 1; continue; }
        switch (m.tag) {
        case 'R': c->subscribed = 1; break;
        case 'Y': c->ready = 1; break;
        case 'C': c->connected = 1; break;
        case 'F': c->failed = 1; break;
        case '=': c->done = 1; c->result = m; break;
        }
    }
}

static int count_flag(int role, size_t off)
{
    int n = 0;
    for (int i = 0; i < nch; i++)
        if (ch[i].role == role && *(int *)((char *)&ch[i] + off)) n++;
    return n;
}
#define COUNT(role, field) count_flag(role, offsetof(struct child, field))

static int any_failed(void)
{
    for (int i = 0; i < nch; i++) if (ch[i].failed) return 1;
    return 0;
}

static void fail(const char *what)
{
    kill_all();
    printf("RESULT peer=%s status=fail what=%s\n", tp_name(), what);
    fflush(stdout);
    while (wait(NULL) > 0) {}
    exit(1);
}

static void reap(void)
{
    cmd_all(0, 'Q');
    uint64_t dl = now_ns() + 10000000000ull;
    int left = nch;
    while (left > 0 && now_ns() < dl) {
        pid_t p = waitpid(-1, NULL, WNOHANG);
        if (p > 0) {
            for (int i = 0; i < nch; i++) if (ch[i].pid == p) ch[i].pid = 0;
            left--;
            continue;
        }
        if (p < 0) break;
        usleep(10000);
    }
    kill_all();
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
}

static void run_tput(void)
{
    for (int i = 0; i < g_subs; i++) spawn('s', i);
    uint64_t dl = now_ns() + 30000000000ull;
    while (COUNT('s', subscribed) < g_subs) {
        if (any_failed()) fail("subscribe");
        if (now_ns() > dl) fail("subscribe-timeout");
        pump(20);
    }
    for (int i = 0; i < g_pubs; i++) spawn('p', i);
    dl = now_ns() + 30000000000ull;
    while (COUNT('s', ready) < g_subs) {
        if (any_failed()) fail("sync");
        if (now_ns() > dl) fail("sync-timeout");
        pump(20);
    }
    sample();
    uint64_t t_go = now_ns();
    cmd_all('p', 'G');
    while (COUNT('p', done) < g_pubs) {
        if (any_failed()) fail("publish");
        pump(20);
    }
    cmd_all('s', 'D');
    while (COUNT('s', done) < g_subs) {
        if (any_failed()) fail("subscriber");
        pump(20);
    }
    sample();
    uint64_t t_end = now_ns();
    long hwm = broker_hwm_kb();

    unsigned long long expected = (unsigned long long)g_pubs * g_n;
    unsigned long long delivered = 0, gaps = 0, ooo = 0, bad = 0, sent = 0;
    unsigned long long first = ~0ull, last = 0, pt0 = ~0ull, pt1 = 0;
    double fmin = 1e9, fmax = 0, fsum = 0, sub_rate_min = 1e30, sub_cpu = 0, pub_cpu = 0, client_cpu_s = 0;
    int disc = 0, tmo = 0, perr = 0;
    long long extra = 0, sub_extra = 0;
    char fr[1024] = "", rr[1024] = "", xr[1024] = "";
    size_t frl = 0, rrl = 0, xrl = 0;
    for (int i = 0; i < nch; i++) {
        struct child *c = &ch[i];
        if (c->role == 's') {
            struct sub_result *s = &c->result.u.s;
            delivered += s->count; gaps += s->gaps; ooo += s->ooo; bad += s->bad;
            double f = (double)s->count / (double)expected;
            if (f < fmin) fmin = f;
            if (f > fmax) fmax = f;
            fsum += f;
            frl += (size_t)snprintf(fr + frl, sizeof fr - frl, "%s%.4f", frl ? "," : "", f);
            if (s->count > 0) {
                if (s->first < first) first = s->first;
                if (s->last > last) last = s->last;
                double w = (double)(s->last - s->first) / 1e9;
                double r = w > 0 ? (double)s->count / w : 0;
                if (r < sub_rate_min) sub_rate_min = r;
                rrl += (size_t)snprintf(rr + rrl, sizeof rr - rrl, "%s%.0f", rrl ? "," : "", r);
                if (w > 0) sub_cpu += 100.0 * s->cpu_s / w;
                client_cpu_s += s->cpu_s;
            } else {
                sub_rate_min = 0;
                rrl += (size_t)snprintf(rr + rrl, sizeof rr - rrl, "%s0", rrl ? "," : "");
            }
            disc += s->disconnected; tmo += s->timed_out;
            if (s->extra > 0) sub_extra += s->extra;
            xrl += (size_t)snprintf(xr + xrl, sizeof xr - xrl, "%s%lld", xrl ? "," : "", s->extra);
        } else if (c->role == 'p') {
            struct pub_result *p = &c->result.u.p;
            sent += p->sent;
            if (p->t0 < pt0) pt0 = p->t0;
            if (p->t1 > pt1) pt1 = p->t1;
            double w = (double)(p->t1 - p->t0) / 1e9;
            if (w > 0) pub_cpu += 100.0 * p->cpu_s / w;
            client_cpu_s += p->cpu_s;
            perr += p->err;
            if (p->extra > 0) extra += p->extra;
        }
    }
    double window = last > first ? (double)(last - first) / 1e9 : 0;
    double sbusy, ssteal;
    sys_cpu(first, last, &sbusy, &ssteal);
    /* all client CPU-seconds over the delivery window, and what the
     * machine did besides broker + clients (other jobs, kernel threads) */
    double clients_pct = window > 0 ? 100.0 * client_cpu_s / window : -1;
    double bcpu = window > 0 ? broker_cpu(first, last) : -1;
    double other_pct = window > 0 ? sbusy - bcpu - clients_pct : -1;
    double rate = window > 0 ? (double)delivered / window : 0;
    double pub_s = (double)(pt1 - pt0) / 1e9;
    printf("RESULT peer=%s mode=tput pubs=%d subs=%d n=%llu size=%zu expected_per_sub=%llu sent=%llu delivered=%llu "
           "rate=%.0f mbps=%.2f frac_min=%.4f frac_avg=%.4f frac_max=%.4f fracs=%s rates=%s window_s=%.3f sub_rate_min=%.0f "
           "pub_rate=%.0f pub_s=%.3f gaps=%llu ooo=%llu bad=%llu disc=%d sub_timeouts=%d pub_err=%d "
           "broker_cpu=%.1f broker_rss0_kb=%ld broker_rss_peak_kb=%ld broker_hwm_kb=%ld "
           "sub_cpu_avg=%.1f pub_cpu_avg=%.1f sub_cpu_sum=%.1f pub_cpu_sum=%.1f sys_cpu=%.1f steal=%.1f "
           "clients_cpu=%.1f other_cpu=%.1f stall_ms=%d run_s=%.3f extra=%lld sub_extra=%lld sub_extras=%s status=ok\n",
           tp_name(), g_pubs, g_subs, g_n, g_size, expected, sent, delivered,
           rate, rate * (double)g_size / 1e6, fmin, fsum / g_subs, fmax, fr, rr, window,
           sub_rate_min > 1e29 ? 0 : sub_rate_min,
           pub_s > 0 ? (double)sent / pub_s : 0, pub_s, gaps, ooo, bad, disc, tmo, perr,
           bcpu, rss_at(t_go), rss_peak(t_go), hwm,
           sub_cpu / g_subs, pub_cpu / g_pubs, sub_cpu, pub_cpu, window > 0 ? sbusy : -1, window > 0 ? ssteal : -1,
           clients_pct, other_pct, g_stall_ms, (double)(t_end - t_go) / 1e9, extra, sub_extra, xr);
    fflush(stdout);
    reap();
}

static void run_lat(void)
{
    int po = spawn('o', 0);
    int pi = spawn('i', 0);
    uint64_t dl = now_ns() + 30000000000ull;
    while (!(ch[po].subscribed && ch[pi].subscribed)) {
        if (any_failed()) fail("subscribe");
        if (now_ns() > dl) fail("subscribe-timeout");
        pump(20);
    }
    sample();
    uint64_t t_go = now_ns();
    cmd_all('i', 'G');
    while (!ch[pi].done) {
        if (any_failed()) fail("pinger");
        pump(20);
    }
    sample();
    uint64_t t_end = now_ns();
    cmd_all('o', 'Q');
    dl = now_ns() + 5000000000ull;
    while (!ch[po].done && !ch[po].failed && now_ns() < dl) pump(20);
    long hwm = broker_hwm_kb();
    struct lat_result *l = &ch[pi].result.u.l;
    double sbusy, ssteal;
    sys_cpu(t_go, t_end, &sbusy, &ssteal);
    /* one request in flight: the rate is the inverse of the mean round trip */
    printf("RESULT peer=%s mode=%s n=%llu warmup=%llu size=%zu rtt_n=%llu lost=%llu min_us=%.1f mean_us=%.1f "
           "rps=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f broker_cpu=%.1f "
           "broker_rss0_kb=%ld broker_rss_peak_kb=%ld broker_hwm_kb=%ld pinger_cpu_s=%.3f sys_cpu=%.1f steal=%.1f "
           "run_s=%.3f err=%d status=%s\n",
           tp_name(), g_rr ? "rr" : "lat", g_n, g_warmup, g_size, l->n, l->lost, l->min_us, l->mean_us,
           l->mean_us > 0 ? 1e6 / l->mean_us : 0.0, l->p50_us, l->p90_us,
           l->p99_us, l->p999_us, l->max_us, broker_cpu(t_go, t_end), rss_at(t_go), rss_peak(t_go), hwm,
           l->cpu_s, sbusy, ssteal, (double)(t_end - t_go) / 1e9, l->err, l->err || l->n == 0 ? "fail" : "ok");
    fflush(stdout);
    reap();
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { fprintf(stderr, "missing value for %s\n", a); return 2; }
        if (!strcmp(a, "--addr")) g_addr = v;
        else if (!strcmp(a, "--mode")) { g_rr = !strcmp(v, "rr"); g_lat = g_rr || !strcmp(v, "lat"); }
        else if (!strcmp(a, "--pubs")) g_pubs = atoi(v);
        else if (!strcmp(a, "--subs")) g_subs = atoi(v);
        else if (!strcmp(a, "--n")) g_n = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--size")) g_size = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--broker-pid")) g_broker_pid = atoi(v);
        else if (!strcmp(a, "--idle-ms")) g_idle_ms = atoi(v);
        else if (!strcmp(a, "--deadline-s")) g_deadline_s = atoi(v);
        else if (!strcmp(a, "--warmup")) g_warmup = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--stall-ms")) g_stall_ms = atoi(v);
        else { fprintf(stderr, "unknown option %s\n", a); return 2; }
        i++;
    }
    if (!g_addr || g_pubs < 1 || g_pubs > 32 || g_subs < 1 || g_subs > 32 ||
        g_size < sizeof(struct bench_hdr) || g_n < 1) {
        fprintf(stderr, "bad arguments (need --addr; 1..32 pubs/subs; size >= %zu)\n", sizeof(struct bench_hdr));
        return 2;
    }
    clk_tck = sysconf(_SC_CLK_TCK);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)g_deadline_s + 60);
    sample();
    if (g_lat) run_lat();
    else run_tput();
    return 0;
}
