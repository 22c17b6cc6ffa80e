#!/usr/bin/env python3
"""chart.py - grouped bar chart of a compare.sh run, as SVG (standard library only).

usage: python3 Benchmarks/chart.py [results/latest.json] [results/latest.svg]

One group per workload metric (W1, W2, W3, W5 throughput; W4 p50 and p99
round-trip latency; W6 fast-subscriber rate), one bar per broker variant.
Every bar is the variant's median normalised to Herald (default policy,
"herald") = 1 and oriented so that higher is better (throughput: v / herald;
latency: herald / v), on a log scale. The number on each bar is the
absolute median. Hatched bars are partial deliveries (the broker or the
publishing socket lost messages: the rate is not a lossless throughput).
"""
import html
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

ORDER = ["herald", "herald-backpressure", "mosquitto", "redis", "redis-nolimit", "nats",
         "dbus-daemon", "dbus-broker", "zmq", "zmq-nodrop"]
NAMES = {
    "herald": "Herald (drop, default)",
    "herald-backpressure": "Herald (backpressure)",
    "mosquitto": "Mosquitto",
    "redis": "Redis",
    "redis-nolimit": "Redis (no output limit)",
    "nats": "NATS",
    "dbus-daemon": "dbus-daemon",
    "dbus-broker": "dbus-broker",
    "zmq": "ZeroMQ proxy (HWM drop)",
    "zmq-nodrop": "ZeroMQ proxy (no-drop)",
}
COLORS = {
    "herald": "#c62828",
    "herald-backpressure": "#ef8a80",
    "mosquitto": "#2e7d32",
    "redis": "#1565c0",
    "redis-nolimit": "#90caf9",
    "nats": "#6a1b9a",
    "dbus-daemon": "#ef6c00",
    "dbus-broker": "#ffcc80",
    "zmq": "#5d4037",
    "zmq-nodrop": "#bcaaa4",
}
LOSSLESS = 0.9995


def si(v, unit, short=False):
    if v is None:
        return "n/a"
    if unit == "us":
        t = f"{v:.0f}" if v >= 100 else f"{v:.1f}"
        return t if short else t + " µs"
    if unit == "MB/s":
        return f"{v:.0f}" if short else f"{v:.0f} MB/s"
    if v >= 1e6:
        return f"{v / 1e6:.1f}M" if v < 1e7 else f"{v / 1e6:.0f}M"
    if v >= 1e3:
        return f"{v / 1e3:.0f}k"
    return f"{v:.0f}"


def metrics(summary):
    def get(v, w):
        s = summary.get(v, {}).get(w)
        return s if s and s.get("runs_ok") else None

    def tput(w, field):
        def f(v):
            s = get(v, w)
            if not s:
                return None, None
            return s.get(field), s.get("frac_min")
        return f

    def lat(field):
        def f(v):
            s = get(v, "W4")
            if not s:
                return None, None
            return s.get(field), None
        return f

    def w6(v):
        s = get(v, "W6")
        if not s or len(s.get("rates", [])) < 2:
            return None, None
        return s["rates"][1], s["fracs"][1]

    return [
        ("W1", "1 pub → 1 sub, 64 B", "msg/s", True, tput("W1", "rate")),
        ("W2", "1 pub → 8 subs, 64 B", "deliveries/s", True, tput("W2", "rate")),
        ("W3", "4 pubs → 1 sub, 64 B", "msg/s", True, tput("W3", "rate")),
        ("W5", "1 → 1, 4 KiB", "MB/s", True, tput("W5", "mbps")),
        ("W4 p50", "round trip, median", "us", False, lat("p50_us")),
        ("W4 p99", "round trip, 99th pct", "us", False, lat("p99_us")),
        ("W6", "fast sub, other stalled", "msg/s", True, w6),
    ]


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "results", "latest.json")
    dst = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(src), "latest.svg")
    with open(src) as f:
        doc = json.load(f)
    summary = doc["summary"]
    variants = [v for v in ORDER if v in summary] + sorted(v for v in summary if v not in ORDER)
    ref = "herald" if "herald" in summary else (variants[0] if variants else None)
    if ref is None:
        sys.exit("chart.py: no results in " + src)

    groups = []
    for key, desc, unit, higher, fn in metrics(summary):
        rv, _ = fn(ref)
        bars = []
        for v in variants:
            val, frac = fn(v)
            if val is None or not rv or val <= 0:
                bars.append((v, None, None, frac))
                continue
            rel = val / rv if higher else rv / val
            bars.append((v, rel, val, frac))
        if any(b[1] is not None for b in bars):
            groups.append((key, desc, unit, higher, rv, bars))
    if not groups:
        sys.exit("chart.py: nothing to plot")

    rels = [b[1] for g in groups for b in g[5] if b[1]]
    # axis limits on the 1-2-5 ladder just outside the data (and around 1)
    steps = [m * 10 ** k for k in range(-6, 7) for m in (1, 2, 5)]
    lo = max([s for s in steps if s <= min(rels + [0.5]) * 0.999] or [steps[0]])
    hi = min([s for s in steps if s >= max(rels + [2.0]) * 1.001] or [steps[-1]])

    nb = len(variants)
    barw, bargap, groupgap = 17, 2, 34
    gw = nb * (barw + bargap) - bargap
    left, right = 92, 30
    top = 150                  # title + legend
    label_room = 58            # above the tallest bar for the value labels
    plot_h = 430
    bottom = 96                # group labels
    W = left + len(groups) * (gw + groupgap) - groupgap + right + 20
    H = top + label_room + plot_h + bottom
    y0 = top + label_room      # y of `hi`
    y1 = y0 + plot_h           # y of `lo`

    def y(v):
        return y1 - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * plot_h

    out = []
    e = html.escape
    out.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
               'font-family="DejaVu Sans, Helvetica, Arial, sans-serif">')
    out.append('<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
               'patternTransform="rotate(45)"><rect width="6" height="6" fill="none"/>'
               '<line x1="0" y1="0" x2="0" y2="6" stroke="#ffffff" stroke-width="2.2"/></pattern></defs>')
    out.append(f'<rect width="{W}" height="{H}" fill="#ffffff"/>')
    m = doc.get("machine", {})
    cfg = doc.get("config", {})
    hd = doc.get("herald", {})
    out.append(f'<text x="{left}" y="30" font-size="20" font-weight="bold">Herald vs. local pub/sub brokers — '
               f'same workloads, same machine, one run</text>')
    sub = (f'{m.get("date_utc", "")} UTC · {m.get("nproc", "?")} CPUs ({e(str(m.get("cpu", "")))}, '
           f'{e(str(m.get("hypervisor") or "bare metal"))}) · broker and all clients share them · '
           f'median of {cfg.get("reps", "?")} rep(s), scale {cfg.get("scale", 1)} · heraldd {e(str(hd.get("heraldd_version") or "?"))}'
           f' ({e(str(hd.get("commit") or "?"))})')
    om = (doc.get("interference") or {}).get("other_cpu_median_pct")
    if om is not None:
        sub += f' · other jobs: median {om:.0f}% of a core'

    out.append(f'<text x="{left}" y="52" font-size="12" fill="#444">{sub}</text>')
    out.append(f'<text x="{left}" y="72" font-size="13" fill="#222">Bar height = performance relative to '
               f'{e(NAMES.get(ref, ref))} = 1 (higher is better: throughput ÷ Herald\'s, or Herald\'s latency ÷ '
               f'latency), log scale. Number on the bar = absolute median. Hatched = partial delivery (messages lost).</text>')

    # legend
    lx, ly = left, 94
    per_row = 5
    colw = (W - left - right) / per_row
    for i, v in enumerate(variants + ["__lossy"]):
        cx = lx + (i % per_row) * colw
        cy = ly + (i // per_row) * 22
        if v == "__lossy":
            out.append(f'<rect x="{cx}" y="{cy}" width="14" height="14" fill="#777"/>')
            out.append(f'<rect x="{cx}" y="{cy}" width="14" height="14" fill="url(#hatch)"/>')
            out.append(f'<text x="{cx + 20}" y="{cy + 12}" font-size="13">partial delivery (lossy)</text>')
            continue
        out.append(f'<rect x="{cx}" y="{cy}" width="14" height="14" fill="{COLORS.get(v, "#888")}"/>')
        weight = ' font-weight="bold"' if v.startswith("herald") else ""
        out.append(f'<text x="{cx + 20}" y="{cy + 12}" font-size="13"{weight}>{e(NAMES.get(v, v))}</text>')

    # axes and grid
    plot_x0 = left
    plot_x1 = W - right
    d = math.floor(math.log10(lo))
    while 10 ** d <= hi * 1.0001:
        for mult in (1, 2, 5):
            v = mult * 10 ** d
            if v < lo * 0.9999 or v > hi * 1.0001:
                continue
            yy = y(v)
            major = mult == 1
            out.append(f'<line x1="{plot_x0}" y1="{yy:.1f}" x2="{plot_x1}" y2="{yy:.1f}" '
                       f'stroke="{"#bbb" if major else "#e6e6e6"}" stroke-width="1"/>')
            lab = f"{v:g}×"
            out.append(f'<text x="{plot_x0 - 8}" y="{yy + 4:.1f}" font-size="{12 if major else 10}" '
                       f'text-anchor="end" fill="{"#222" if major else "#777"}">{lab}</text>')
        d += 1
    y_ref = y(1)
    out.append(f'<line x1="{plot_x0}" y1="{y_ref:.1f}" x2="{plot_x1}" y2="{y_ref:.1f}" stroke="#c62828" '
               'stroke-width="1.5" stroke-dasharray="6,4"/>')
    ymid = (y0 + y1) / 2
    out.append(f'<text x="22" y="{ymid:.0f}" font-size="13" text-anchor="middle" '
               f'transform="rotate(-90 22 {ymid:.0f})">relative to {e(NAMES.get(ref, ref))} (log scale, higher = better)</text>')
    out.append(f'<line x1="{plot_x0}" y1="{y0}" x2="{plot_x0}" y2="{y1}" stroke="#222"/>')
    out.append(f'<line x1="{plot_x0}" y1="{y1}" x2="{plot_x1}" y2="{y1}" stroke="#222"/>')

    # bars
    for gi, (key, desc, unit, higher, rv, bars) in enumerate(groups):
        gx = left + 10 + gi * (gw + groupgap)
        if gi % 2 == 1:
            out.append(f'<rect x="{gx - groupgap / 2:.0f}" y="{y0 - label_room + 6}" width="{gw + groupgap}" '
                       f'height="{plot_h + label_room - 6}" fill="#f5f5f5" opacity="0.6"/>')
        for bi, (v, rel, val, frac) in enumerate(bars):
            x = gx + bi * (barw + bargap)
            if rel is None:
                out.append(f'<text x="{x + barw / 2:.1f}" y="{y1 - 6}" font-size="10" text-anchor="middle" '
                           f'fill="#999" transform="rotate(-90 {x + barw / 2:.1f} {y1 - 6})">n/a</text>')
                continue
            yt = y(max(rel, lo))
            h = y1 - yt
            col = COLORS.get(v, "#888")
            out.append(f'<rect x="{x}" y="{yt:.1f}" width="{barw}" height="{h:.1f}" fill="{col}">'
                       f'<title>{e(NAMES.get(v, v))} {key}: {e(si(val, unit))} '
                       f'({rel:.3g}× Herald){"" if frac is None else f", delivered {frac:.3f}"}</title></rect>')
            if frac is not None and frac < LOSSLESS:
                out.append(f'<rect x="{x}" y="{yt:.1f}" width="{barw}" height="{h:.1f}" fill="url(#hatch)"/>')
            lab = si(val, unit, short=True)
            tx, ty = x + barw / 2 + 4, yt - 4
            out.append(f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="11" fill="#222" '
                       f'transform="rotate(-90 {tx:.1f} {ty:.1f})">{e(lab)}</text>')
        cx = gx + gw / 2
        out.append(f'<text x="{cx:.1f}" y="{y1 + 22}" font-size="15" font-weight="bold" text-anchor="middle">{e(key)}</text>')
        out.append(f'<text x="{cx:.1f}" y="{y1 + 40}" font-size="12" text-anchor="middle" fill="#333">{e(desc)}</text>')
        u = "µs, lower latency = taller" if unit == "us" else unit
        out.append(f'<text x="{cx:.1f}" y="{y1 + 56}" font-size="11" text-anchor="middle" fill="#666">({e(u)})</text>')
        out.append(f'<text x="{cx:.1f}" y="{y1 + 74}" font-size="12" text-anchor="middle" fill="#c62828">'
                   f'Herald: {e(si(rv, unit))}</text>')
    out.append(f'<text x="{left}" y="{H - 8}" font-size="11" fill="#666">Data: {e(os.path.basename(src))} '
               '(Benchmarks/compare.sh). W6 bar = the subscriber that keeps reading while the other one stops for 2 s.'
               '</text>')
    out.append("</svg>")
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
