/* t_herald.c - Herald wire-protocol client (written for this benchmark from
 * Protocol/PROTOCOL.md, version 1): HELLO/WELCOME, SUBSCRIBE/OK, PUBLISH,
 * MESSAGE, DROPPED, ERROR, PING/PONG; and for request/reply (W8) a responder
 * SUBSCRIBE (flag 0x01), REQUEST, CALL, REPLY and RESPONSE (§4.14-§4.17).
 * addr: "unix:@name" (abstract) or "unix:/path".
 *
 * HELLO asks for slow-consumer policy 0xFF (= the broker's configured
 * default) and output limit 0 (= the broker's default), so the policy under
 * test is chosen on the heraldd command line (run-one.sh variants herald and
 * herald-backpressure).
 *
 * tp_extra() = number of messages the broker reported as lost in DROPPED
 * notices (0x12, drop policy) on this connection.  The driver prints the
 * publishers' sum as "extra" (always 0: publishers subscribe to nothing)
 * and the subscribers' sum as "sub_extra" (per subscriber: "sub_extras").
 * Under the drop policy delivered + sub_extra = published for every
 * subscriber that read to the end: loss is reported, never silent.
 * ERROR frames (and DROPPED totals) are written to stderr, i.e. to the
 * run's broker log, where run-one.sh counts "herald: ERROR" lines into
 * log_events. */
#include "net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    F_HELLO = 0x01, F_WELCOME = 0x02, F_ERROR = 0x03, F_PING = 0x04, F_PONG = 0x05,
    F_GOODBYE = 0x06, F_OK = 0x07, F_SUBSCRIBE = 0x08, F_PUBLISH = 0x10,
    F_MESSAGE = 0x11, F_DROPPED = 0x12, F_REQUEST = 0x14, F_CALL = 0x15, F_REPLY = 0x16,
    F_RESPONSE = 0x17,
};

struct herald {
    int welcomed;
    int oks;
    int pongs;
    int errors;       /* ERROR frames received */
    int fatal;        /* an ERROR with flag 0x01 (the broker closes after it) */
    int goodbye;
    int bad;          /* frames we could not decode */
    uint32_t next_id;
    uint32_t call_id;  /* the CALL being handed to the callback (tp_reply answers it) */
    uint8_t policy;   /* policy in force, from WELCOME */
    uint32_t output_limit;
    uint32_t max_frame;
    unsigned long long drop_notices, drop_msgs, drop_bytes;
};

struct conn {
    struct rawconn *rc;
    struct herald st;
    char name[64];
};

const char *tp_name(void) { return "herald"; }

static void put_header(uint8_t *p, uint32_t body, uint8_t type, uint16_t aux)
{
    /* little-endian host (x86_64/aarch64 Linux), as the wire format */
    memcpy(p, &body, 4); p[4] = type; p[5] = 0; memcpy(p + 6, &aux, 2);
}

static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

static int parse(struct rawconn *rc, msg_cb cb, void *ctx)
{
    struct herald *st = rc->proto;
    int n = 0;
    while (rc->ilen - rc->ipos >= 8) {
        const uint8_t *p = rc->in + rc->ipos;
        uint32_t body = get32(p);
        uint8_t type = p[4], flags = p[5];
        uint16_t aux = get16(p + 6);
        if (rc->ilen - rc->ipos < 8 + (size_t)body) break;
        const uint8_t *b = p + 8;
        switch (type) {
        case F_MESSAGE: /* 24-byte sender block, topic (aux bytes), payload */
            if (body < 24u + aux) { st->bad++; break; }
            if (cb) cb(ctx, b + 24 + aux, body - 24 - aux);
            else rc->dropped++;
            n++;
            break;
        case F_CALL: /* sender block, call_id, subscription_id, topic (aux bytes), payload */
            if (body < 32u + aux) { st->bad++; break; }
            st->call_id = get32(b + 24);
            if (cb) cb(ctx, b + 32 + aux, body - 32 - aux);
            else rc->dropped++;
            st->call_id = 0;
            n++;
            break;
        case F_RESPONSE: /* sender block, request_id, status, payload */
            if (body < 32u) { st->bad++; break; }
            if (get32(b + 28) != 0) { st->errors++; fprintf(stderr, "herald: RESPONSE with status %u\n", get32(b + 28)); }
            if (cb) cb(ctx, b + 32, body - 32);
            else rc->dropped++;
            n++;
            break;
        case F_WELCOME:
            if (body >= 52) {
                st->max_frame = get32(b + 32);
                st->output_limit = get32(b + 44);
                st->policy = b[48];
            }
            st->welcomed = 1;
            break;
        case F_OK: st->oks++; break;
        case F_PONG: st->pongs++; break;
        case F_PING: { /* the broker may ping; answer with the same token */
            if (body != 8) { st->bad++; break; }
            uint8_t *q = raw_reserve(rc, 16);
            put_header(q, 8, F_PONG, 0);
            memcpy(q + 8, b, 8);
            rc->olen += 16;
            break;
        }
        case F_DROPPED:
            if (body < 16) { st->bad++; break; }
            st->drop_notices++;
            st->drop_msgs += get64(b);
            st->drop_bytes += get64(b + 8);
            break;
        case F_ERROR: {
            st->errors++;
            if (flags & 0x01) st->fatal = 1;
            unsigned code = body >= 2 ? get16(b) : 0;
            unsigned req = body >= 8 ? get32(b + 4) : 0;
            int ml = body > 8 ? (int)(body - 8) : 0;
            fprintf(stderr, "herald: ERROR code=%u%s request=%u: %.*s\n", code, (flags & 0x01) ? " (fatal)" : "",
                    req, ml, (const char *)b + 8);
            break;
        }
        case F_GOODBYE: st->goodbye = 1; break;
        default: st->bad++; break;
        }
        rc->ipos += 8 + body;
    }
    return n;
}

static int wait_for(struct conn *c, int *counter, int before)
{
    uint64_t deadline = now_ns() + 10000000000ull;
    if (raw_flush(c->rc) < 0) return -1;
    while (*counter == before) {
        if (now_ns() > deadline || c->st.errors) return -1;
        if (raw_poll(c->rc, 100, NULL, NULL) < 0) return -1;
    }
    return 0;
}

struct conn *tp_connect(const char *addr, const char *name, int pub_only)
{
    int fd = raw_connect(addr);
    if (fd < 0) return NULL;
    struct conn *c = calloc(1, sizeof *c);
    c->rc = raw_new(fd, parse, &c->st);
    c->rc->pub_only = pub_only;
    c->st.next_id = 1;
    snprintf(c->name, sizeof c->name, "%s", name);
    size_t nl = strlen(c->name);
    /* HELLO body: magic, min/max version 1, policy 0xFF (broker default),
     * reserved, name length, output limit 0 (broker default), capabilities 0, name */
    uint8_t *p = raw_reserve(c->rc, 8 + 20 + nl);
    put_header(p, (uint32_t)(20 + nl), F_HELLO, 0);
    uint32_t magic = 0x444C5248, zero = 0;
    uint16_t v = 1, nlen = (uint16_t)nl;
    memcpy(p + 8, &magic, 4); memcpy(p + 12, &v, 2); memcpy(p + 14, &v, 2);
    uint32_t capabilities = 0x2; /* requests */
    p[16] = 0xFF; p[17] = 0; memcpy(p + 18, &nlen, 2); memcpy(p + 20, &zero, 4); memcpy(p + 24, &capabilities, 4);
    memcpy(p + 28, c->name, nl);
    c->rc->olen += 28 + nl;
    if (wait_for(c, &c->st.welcomed, 0) < 0) {
        fprintf(stderr, "herald: no WELCOME\n");
        raw_free(c->rc);
        free(c);
        return NULL;
    }
    return c;
}

static int subscribe(struct conn *c, const char *topic, uint8_t flags)
{
    /* "bench.a" is a single-level Herald topic/filter ('.' is an ordinary character) */
    size_t tl = strlen(topic);
    uint8_t *p = raw_reserve(c->rc, 16 + tl);
    put_header(p, (uint32_t)(8 + tl), F_SUBSCRIBE, 0);
    p[5] = flags;
    uint32_t id = c->st.next_id++;
    memcpy(p + 8, &id, 4); memcpy(p + 12, &id, 4); memcpy(p + 16, topic, tl);
    c->rc->olen += 16 + tl;
    int before = c->st.oks;
    /* OK is queued before any MESSAGE the subscription delivers (spec §8.4) */
    return wait_for(c, &c->st.oks, before);
}

int tp_subscribe(struct conn *c, const char *topic) { return subscribe(c, topic, 0); }

/* A responder subscription: SUBSCRIBE with flag 0x01 (§4.8). */
int tp_serve(struct conn *c, const char *topic) { return subscribe(c, topic, 0x01); }

int tp_request(struct conn *c, const char *topic, const uint8_t *data, size_t len)
{
    size_t tl = strlen(topic);
    struct rawconn *rc = c->rc;
    if (c->st.max_frame && 16 + tl + len > c->st.max_frame) return -1;
    uint8_t *p = raw_reserve(rc, 16 + tl + len);
    put_header(p, (uint32_t)(8 + tl + len), F_REQUEST, (uint16_t)tl);
    uint32_t id = c->st.next_id++, timeout_ms = 10000;
    memcpy(p + 8, &id, 4); memcpy(p + 12, &timeout_ms, 4);
    memcpy(p + 16, topic, tl);
    memcpy(p + 16 + tl, data, len);
    rc->olen += 16 + tl + len;
    return 0;
}

int tp_reply(struct conn *c, const uint8_t *data, size_t len)
{
    if (!c->st.call_id) return -1;
    struct rawconn *rc = c->rc;
    uint8_t *p = raw_reserve(rc, 16 + len);
    put_header(p, (uint32_t)(8 + len), F_REPLY, 0);
    uint32_t status = 0;
    memcpy(p + 8, &c->st.call_id, 4); memcpy(p + 12, &status, 4);
    memcpy(p + 16, data, len);
    rc->olen += 16 + len;
    return 0;
}

int tp_publish(struct conn *c, const char *topic, const uint8_t *data, size_t len)
{
    size_t tl = strlen(topic);
    struct rawconn *rc = c->rc;
    if (c->st.max_frame && 8 + tl + len > c->st.max_frame) return -1;
    uint8_t *p = raw_reserve(rc, 8 + tl + len);
    put_header(p, (uint32_t)(tl + len), F_PUBLISH, (uint16_t)tl);
    memcpy(p + 8, topic, tl);
    memcpy(p + 8 + tl, data, len);
    rc->olen += 8 + tl + len;
    if (rc->olen - rc->opos >= (64u << 10)) return raw_flush(rc);
    return 0;
}

int tp_flush(struct conn *c) { return raw_flush(c->rc); }

int tp_poll(struct conn *c, int timeout_ms, msg_cb cb, void *ctx)
{
    return raw_poll(c->rc, timeout_ms, cb, ctx);
}

long long tp_extra(struct conn *c) { return (long long)c->st.drop_msgs; }

void tp_close(struct conn *c)
{
    if (c->st.drop_notices || c->st.errors || c->st.bad)
        fprintf(stderr, "herald: %s: DROPPED notices=%llu messages=%llu bytes=%llu; errors=%d%s; undecodable frames=%d\n",
                c->name, c->st.drop_notices, c->st.drop_msgs, c->st.drop_bytes, c->st.errors,
                c->st.fatal ? " (fatal)" : "", c->st.bad);
    raw_try_flush(c->rc);
    raw_free(c->rc);
    free(c);
}
