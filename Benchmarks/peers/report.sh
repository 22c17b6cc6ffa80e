#!/bin/bash
# report.sh META RAW - turn the RESULT lines of one run-all.sh session into
# markdown tables (medians over repetitions; raw values stay in RAW).
# (Herald repository copy: rows for herald / herald-backpressure, Herald's
# DROPPED-notice counts (sub_extras) in the W6 and loss tables, heraldd
# version and configuration lines.)
set -u
META=$1 RAW=$2
awk -v META="$META" -v RAWNAME="$RAW" '
function sortnum(s, a,    n, i, j, t) {
    n = split(s, a, " ")
    for (i = 2; i <= n; i++) { t = a[i] + 0; j = i - 1; while (j >= 1 && a[j] + 0 > t) { a[j + 1] = a[j]; j-- } a[j + 1] = t }
    return n
}
function med(s,    a, n) { n = sortnum(s, a); if (n == 0) return ""; if (n % 2) return a[(n + 1) / 2] + 0; return (a[n / 2] + a[n / 2 + 1]) / 2 }
function lo(s,    a, n) { n = sortnum(s, a); return n ? a[1] + 0 : "" }
function hi(s,    a, n) { n = sortnum(s, a); return n ? a[n] + 0 : "" }
function sum(s,    a, n, i, t) { n = split(s, a, " "); t = 0; for (i = 1; i <= n; i++) t += a[i]; return t }
function commas(x,    s, neg, out) {
    x = sprintf("%.0f", x); neg = ""; if (substr(x, 1, 1) == "-") { neg = "-"; x = substr(x, 2) }
    out = ""
    while (length(x) > 3) { out = "," substr(x, length(x) - 2) out; x = substr(x, 1, length(x) - 3) }
    return neg x out
}
function V(v, w, f) { return vals[v SUBSEP w SUBSEP f] }
function has(v, w) { return (v SUBSEP w) in nok }
# "median (min-max)" of an integer-ish rate
function rate3(v, w, f) {
    if (!has(v, w)) return fails_txt(v, w)
    return commas(med(V(v, w, f))) " (" commas(lo(V(v, w, f))) "-" commas(hi(V(v, w, f))) ")" star(v, w)
}
# "*" when the median run lost messages: the rate is then over a partial delivery
function star(v, w) { return (med(V(v, w, "frac_min")) < 0.9995) ? " *" : "" }
function nz(s,    a, n, i, c) { n = split(s, a, " "); c = 0; for (i = 1; i <= n; i++) if (a[i] + 0 > 0) c++; return c }
function cnt(s,    a) { return split(s, a, " ") }
function fails_txt(v, w) { return ((v SUBSEP w) in nfail) ? "FAILED x" nfail[v SUBSEP w] : "n/a" }
function frac(v, w, f,    d, t) {
    if (!has(v, w)) return "-"
    t = sprintf("%.3f", med(V(v, w, f)))
    d = nz(V(v, w, "disc"))
    if (d) t = t ", sub disconnected in " d "/" cnt(V(v, w, "disc")) " runs"
    else if (lo(V(v, w, f)) < 0.9995) t = t ", worst run " sprintf("%.4f", lo(V(v, w, f)))
    return t
}
function worst(v, w, f) { if (!has(v, w)) return "-"; return sprintf("%.3f", lo(V(v, w, f))) }
function mib(kb) { return sprintf("%.1f", kb / 1024) }
BEGIN {
    while ((getline line < META) > 0) { p = index(line, "="); meta[substr(line, 1, p - 1)] = substr(line, p + 1) }
    nv = split("herald herald-backpressure mosquitto redis redis-nolimit nats dbus-daemon dbus-broker zmq zmq-nodrop", order, " ")
    label["herald"] = "**Herald** heraldd (unix abstract socket, defaults: drop, 8 MiB output limit)"
    label["herald-backpressure"] = "**Herald** heraldd (unix abstract socket, --slow-consumer backpressure: lossless)"
    label["mosquitto"] = "mosquitto (MQTT 3.1.1 QoS0, unix socket)"
    label["redis"] = "redis pub/sub (unix socket, default output-buffer limits)"
    label["redis-nolimit"] = "redis pub/sub (unix socket, pubsub limit 0 0 0)"
    label["nats"] = "nats-server (TCP 127.0.0.1)"
    label["dbus-daemon"] = "dbus-daemon (sd-bus clients; signals, W8 method calls)"
    label["dbus-broker"] = "dbus-broker (sd-bus clients; signals, W8 method calls)"
    label["zmq"] = "ZeroMQ XSUB/XPUB proxy (ipc, defaults: HWM 1000, drop)"
    label["zmq-nodrop"] = "ZeroMQ XSUB/XPUB proxy (ipc, XPUB_NODROP: back-pressure)"
}
{
    delete kv
    for (i = 1; i <= NF; i++) { p = index($i, "="); if (p) kv[substr($i, 1, p - 1)] = substr($i, p + 1) }
    k = kv["variant"] SUBSEP kv["wl"]
    if (kv["wl"] == "W8") anyw8 = 1
    if (kv["status"] != "ok") { nfail[k]++; next }
    nok[k]++
    for (f in kv) vals[k SUBSEP f] = vals[k SUBSEP f] " " kv[f]
    if (kv["mode"] == "tput") {
        vals[k SUBSEP "other"] = vals[k SUBSEP "other"] " " kv["other_cpu"]
        if (kv["frac_min"] + 0 < 0.9995 || kv["disc"] + 0 > 0)
            lossy[++nlossy] = sprintf("| %s | %s | %s | %s | %s | %s | %s | %s |", kv["variant"], kv["wl"], kv["rep"], kv["fracs"], kv["disc"], kv["log_events"], kv["gaps"], \
                                      (kv["variant"] ~ /^herald/ && ("sub_extras" in kv)) ? kv["sub_extras"] : "-")
    }
    # per-subscriber lists for W6: stalled sub (index 0) and the fast one (index 1)
    if (kv["wl"] == "W6") {
        split(kv["fracs"], fr, ","); split(kv["rates"], rr, ",")
        vals[k SUBSEP "f0"] = vals[k SUBSEP "f0"] " " fr[1]; vals[k SUBSEP "f1"] = vals[k SUBSEP "f1"] " " fr[2]
        vals[k SUBSEP "r1"] = vals[k SUBSEP "r1"] " " rr[2]
        split(kv["sub_extras"], xx, ",")
        vals[k SUBSEP "x0"] = vals[k SUBSEP "x0"] " " (xx[1] + 0)
    }
}
END {
    print "# Herald and peer brokers (local pub/sub brokers on this machine)"
    print ""
    print "- date (UTC): " meta["date_utc"]
    print "- machine: nproc=" meta["nproc"] ", " meta["cpu"] " (" meta["hypervisor"] " guest), " meta["mem"] " RAM, Debian " meta["debian"]
    print "- kernel: " meta["uname"]
    print "- versions (Debian packages): mosquitto " meta["ver_mosquitto"] ", redis-server " meta["ver_redis"] ", nats-server " meta["ver_nats"] \
          ", dbus-daemon " meta["ver_dbus_daemon"] ", dbus-broker " meta["ver_dbus_broker"] ", libzmq5 " meta["ver_libzmq"] \
          ", libsystemd0 (sd-bus) " meta["ver_libsystemd"] "; clients built with gcc " meta["gcc"]
    if ("ver_heraldd" in meta)
        print "- Herald: heraldd " meta["ver_heraldd"] " (release build, commit " meta["herald_commit"] ", built " meta["heraldd_built"] " UTC, " meta["swift"] ")"
    print "- repetitions per cell: " meta["reps"] " (value shown = median; range = min-max over the repetitions); raw lines: `" RAWNAME "`"
    print "- every timed run: fresh broker, `flock /tmp/bench.lock`, all clients are separate processes on the same 2 cores as the broker"
    print ""
    print "## Throughput (64-byte payload unless noted), delivered messages/s measured at the subscribers"
    print ""
    print "| peer | W1 1->1 msg/s | W1 delivered | W2 1->8 deliveries/s (aggregate) | W2 delivered, worst sub | W3 4->1 msg/s | W3 delivered | W5 4 KiB 1->1 MB/s | W5 delivered |"
    print "|---|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= nv; i++) {
        v = order[i]; if (!((v SUBSEP "W1") in nok) && !((v SUBSEP "W1") in nfail) && !((v SUBSEP "W4") in nok)) continue
        w5 = has(v, "W5") ? sprintf("%.1f (%.1f-%.1f)", med(V(v, "W5", "mbps")), lo(V(v, "W5", "mbps")), hi(V(v, "W5", "mbps"))) star(v, "W5") : fails_txt(v, "W5")
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", label[v], rate3(v, "W1", "rate"), frac(v, "W1", "frac_min"), \
            rate3(v, "W2", "rate"), frac(v, "W2", "frac_min"), rate3(v, "W3", "rate"), frac(v, "W3", "frac_min"), w5, frac(v, "W5", "frac_min")
    }
    print ""
    print "\"delivered\" = messages received / messages published (median over repetitions; W2: the least-served of the 8 subscribers). Below 1.000 means the broker (or, for ZeroMQ, the publishing socket) dropped messages or disconnected the subscriber; every such run is listed at the end. `*` = the median run lost messages, so its rate is a rate of partial delivery, not a lossless throughput (for redis W3 with default limits the window is also shorter than 1 s: the subscriber is disconnected within half a second)."
    print ""
    print "## W4 round-trip latency (ping on bench.ping -> echo on bench.pong), 64 B, 1000 warm-up + 20000 measured, microseconds"
    print ""
    print "| peer | p50 us | p90 us | p99 us | p99.9 us | max us | lost |"
    print "|---|---|---|---|---|---|---|"
    for (i = 1; i <= nv; i++) {
        v = order[i]
        if (!has(v, "W4")) { if ((v SUBSEP "W4") in nfail) printf "| %s | FAILED |||||\n", label[v]; continue }
        printf "| %s | %.1f | %.1f | %.1f | %.1f | %.0f (%.0f-%.0f) | %d |\n", label[v], med(V(v, "W4", "p50_us")), med(V(v, "W4", "p90_us")), \
            med(V(v, "W4", "p99_us")), med(V(v, "W4", "p999_us")), med(V(v, "W4", "max_us")), lo(V(v, "W4", "max_us")), hi(V(v, "W4", "max_us")), \
            sum(V(v, "W4", "lost"))
    }
    print ""
    if (anyw8) {
        print "## W8 request/reply (a request on bench.rr answered by one responder with its payload: Herald REQUEST/REPLY, NATS request with a reply inbox, D-Bus method call), 64 B, 1000 warm-up + 20000 measured, one in flight, microseconds"
        print ""
        print "| peer | p50 us | p90 us | p99 us | p99.9 us | max us | requests/s | lost |"
        print "|---|---|---|---|---|---|---|---|"
        for (i = 1; i <= nv; i++) {
            v = order[i]
            if (!has(v, "W8")) { if ((v SUBSEP "W8") in nfail) printf "| %s | FAILED ||||||\n", label[v]; continue }
            printf "| %s | %.1f | %.1f | %.1f | %.1f | %.0f (%.0f-%.0f) | %.0f | %d |\n", label[v], med(V(v, "W8", "p50_us")), med(V(v, "W8", "p90_us")), \
                med(V(v, "W8", "p99_us")), med(V(v, "W8", "p999_us")), med(V(v, "W8", "max_us")), lo(V(v, "W8", "max_us")), hi(V(v, "W8", "max_us")), \
                med(V(v, "W8", "rps")), sum(V(v, "W8", "lost"))
        }
        print ""
    }
    print "## Where the time goes (W1, medians): CPU in % of one core over the subscriber'"'"'s first-to-last window"
    print ""
    print "| peer | broker CPU % | subscriber CPU % | publisher CPU % | whole machine busy % (of 200) | not ours % | steal % | broker RSS before -> peak (MiB) | W2 broker CPU % | W2 machine busy % |"
    print "|---|---|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= nv; i++) {
        v = order[i]; if (!has(v, "W1")) continue
        w2c = has(v, "W2") ? sprintf("%.0f", med(V(v, "W2", "broker_cpu"))) : "-"
        w2s = has(v, "W2") ? sprintf("%.0f", med(V(v, "W2", "sys_cpu"))) : "-"
        printf "| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.1f | %s -> %s | %s | %s |\n", label[v], med(V(v, "W1", "broker_cpu")), med(V(v, "W1", "sub_cpu_avg")), \
            med(V(v, "W1", "pub_cpu_avg")), med(V(v, "W1", "sys_cpu")), med(V(v, "W1", "other")), med(V(v, "W1", "steal")), mib(med(V(v, "W1", "broker_rss0_kb"))), \
            mib(med(V(v, "W1", "broker_hwm_kb"))), w2c, w2s
    }
    print ""
    print "Broker RSS peak = VmHWM of the broker process at the end of the run (fresh broker per run, so this is the peak of that run). \"not ours\" = whole-machine busy minus broker CPU minus all client CPU-seconds over the same window: a few % either way is the driver, the kernel and sampling skew; much more would mean another job disturbed the run. nats-server is multi-threaded (can exceed 100 %); ZeroMQ client processes include the libzmq I/O thread."
    print ""
    print "## Broker memory peak per workload (MiB, VmHWM, median)"
    print ""
    print "| peer | W1 | W2 | W3 | W5 | W6 |"
    print "|---|---|---|---|---|---|"
    for (i = 1; i <= nv; i++) {
        v = order[i]; if (!has(v, "W1")) continue
        printf "| %s", label[v]
        split("W1 W2 W3 W5 W6", ws, " ")
        for (j = 1; j <= 5; j++) printf " | %s", has(v, ws[j]) ? mib(med(V(v, ws[j], "broker_hwm_kb"))) : "-"
        print " |"
    }
    print ""
    print "## W6 (extra): slow consumer. 1 pub -> 2 subs, 64 B; subscriber 0 stops reading for 2 s after its first message"
    print ""
    print "| peer | stalled sub delivered | stalled sub: loss announced (Herald DROPPED, fraction) | fast sub delivered | fast sub msg/s | publisher send rate msg/s | subscribers disconnected (sum over reps) | broker RSS peak MiB |"
    print "|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= nv; i++) {
        v = order[i]; if (!has(v, "W6")) { if ((v SUBSEP "W6") in nfail) printf "| %s | FAILED |||||||\n", label[v]; continue }
        ann = v ~ /^herald/ ? sprintf("%.3f", med(V(v, "W6", "x0")) / meta["n_" v "_W6"]) : "-"
        printf "| %s | %.3f | %s | %.3f | %s | %s | %d | %s |\n", label[v], med(V(v, "W6", "f0")), ann, med(V(v, "W6", "f1")), commas(med(V(v, "W6", "r1"))), \
            commas(med(V(v, "W6", "pub_rate"))), sum(V(v, "W6", "disc")), mib(med(V(v, "W6", "broker_hwm_kb")))
    }
    print ""
    print "## How each peer was configured"
    print ""
    print "- Herald: `heraldd --address @herald-peers-<pid>-<n>` (release build of this repository; defaults: slow-consumer policy drop, output limit 8 MiB per subscriber, 1 MiB frames, log level info); variant herald-backpressure adds `--slow-consumer backpressure` (nothing is dropped: a subscriber over its limit pauses the publishers feeding it until it drains to half). Stopped with SIGTERM by pid (exits 0 after flushing). Client: raw Herald protocol v1 (`t_herald.c`, written from Protocol/PROTOCOL.md), HELLO with policy 0xFF and output limit 0 (= broker defaults), SUBSCRIBE bench.a and wait for OK (the barrier), PUBLISH pipelined (no acks), PING answered with PONG. Under drop, every loss is announced by DROPPED frames; the client counts the messages they report (`sub_extra` in the raw lines)."
    print "- mosquitto: `mosquitto -c conf` with `listener 0 <dir>/mosq.sock`, `allow_anonymous true`, `persistence false`, `per_listener_settings false`, `user root`, logging of errors/warnings only; everything else default (max_queued_messages 1000, which mosquitto 2.0 also applies to QoS 0 packets pending for a connected client: beyond it they are dropped). Client: raw MQTT 3.1.1 written for this benchmark, clean session, QoS 0 publish/subscribe, topic bench/a."
    print "- redis: `redis-server --port 0 --unixsocket <dir>/redis.sock --save \"\" --appendonly no` (defaults otherwise, client-output-buffer-limit pubsub 32mb 8mb 60); variant redis-nolimit adds `--client-output-buffer-limit \"pubsub 0 0 0\"`. Client: raw RESP2; subscribers SUBSCRIBE bench.a; publishers send `CLIENT REPLY OFF` then pipelined PUBLISH (no per-message reply)."
    print "- nats: `nats-server -a 127.0.0.1 -p <free port 14222..>` (defaults: max_pending 64 MB, write deadline 10 s). Client: raw NATS text protocol, CONNECT verbose=false pedantic=false, SUB then PING/PONG as the subscription barrier, PUB pipelined, PING answered with PONG. TCP_NODELAY on."
    print "- dbus-daemon: `dbus-daemon --config-file=/usr/share/dbus-1/session.conf --address=unix:abstract=bench-... --nofork` (the stock session-bus policy and its 1 GB queue limits). Client: sd-bus (libsystemd); publisher emits signal org.bench.a on /org/bench with one `ay` argument (the payload), subscribers call AddMatch type=signal,interface=org.bench,member=a (synchronous, so the match is in place before the barrier)."
    print "- dbus-broker: `dbus-broker-launch --scope user` (stock session.conf) given its listening socket by `systemd-socket-activate -l <dir>/bus` with XDG_RUNTIME_DIR=<dir>; it refuses to start without journald, so it runs in a private mount namespace (`unshare --mount`) with a tmpfs on /run/systemd and our `logsink` bound at /run/systemd/journal/socket. Same sd-bus clients as dbus-daemon. All clients run as uid 0, and dbus-broker accounts queue memory per uid."
    print "- ZeroMQ: `zmq_broker` (this directory) = zmq_proxy(XSUB bound at ipc://@bench-xsub-..., XPUB bound at ipc://@bench-xpub-...). Publishers: PUB socket connected to XSUB; subscribers: SUB socket connected to XPUB, subscribed to the prefix \"bench.a\\0\"; one frame per message = topic, NUL, payload. Variant zmq = libzmq defaults (SNDHWM/RCVHWM 1000; PUB drops at the high-water mark). Variant zmq-nodrop: ZMQ_XPUB_NODROP on the proxy XPUB and the publishers use an XPUB socket with ZMQ_XPUB_NODROP, so a full pipe blocks the sender instead of dropping (lossless, back-pressure)."
    print "- Start barrier (all peers): subscribers subscribe and wait for the broker confirmation where the protocol has one; then every publisher sends a sync message every 10 ms until each subscriber has received a sync message from each publisher; only then do publishers start the timed phase. This also closes ZeroMQ'"'"'s unacknowledged-subscription gap."
    print "- Publishers batch protocol frames into 64 KiB writes (raw clients); sd-bus writes each message itself (one sendmsg per message; the client blocks when 1024 messages are queued); libzmq batches in its I/O thread. Subscribers read up to 1 MiB per read() (raw clients)."
    print ""
    print "## Message counts used (N; W3: per publisher)"
    print ""
    print "| peer | W1 | W2 | W3 | W4 | W5 | W6 |"
    print "|---|---|---|---|---|---|---|"
    for (i = 1; i <= nv; i++) {
        v = order[i]; if (!(("n_" v "_W1") in meta)) continue
        printf "| %s | %s | %s | %s | %s | %s | %s |\n", v, commas(meta["n_" v "_W1"]), commas(meta["n_" v "_W2"]), commas(meta["n_" v "_W3"]), \
            commas(meta["n_" v "_W4"]), commas(meta["n_" v "_W5"]), commas(meta["n_" v "_W6"])
    }
    print ""
    print "## Run durations (subscriber first-to-last window, seconds, min-max over all runs)"
    print ""
    print "| peer | W1 | W2 | W3 | W4 (whole ping-pong) | W5 | W6 |"
    print "|---|---|---|---|---|---|---|"
    for (i = 1; i <= nv; i++) {
        v = order[i]; if (!has(v, "W1")) continue
        printf "| %s", v
        split("W1 W2 W3 W4 W5 W6", ws, " ")
        for (j = 1; j <= 6; j++) {
            f = ws[j] == "W4" ? "run_s" : "window_s"
            printf " | %s", has(v, ws[j]) ? sprintf("%.2f-%.2f", lo(V(v, ws[j], f)), hi(V(v, ws[j], f))) : "-"
        }
        print " |"
    }
    if (nlossy) {
        print ""
        print "## Runs with losses or disconnects (every repetition, per-subscriber delivered fractions)"
        print ""
        print "| variant | workload | rep | delivered fraction per subscriber | subscribers disconnected | broker log events | sequence gaps (sum) | Herald: messages announced lost by DROPPED, per subscriber |"
        print "|---|---|---|---|---|---|---|---|"
        for (i = 1; i <= nlossy; i++) print lossy[i]
    }
    nf = 0
    for (k in nfail) nf++
    if (nf) {
        print ""
        print "## Failed runs"
        print ""
        for (k in nfail) { split(k, kk, SUBSEP); print "- " kk[1] " " kk[2] ": " nfail[k] " failed run(s) (see the raw file and results/logs-*)" }
    }
}
' "$RAW"
