#!/usr/bin/env python3
"""summarize.py - turn one run-all.sh session (meta + raw RESULT lines) into
latest.json and the Herald / best peer ratio tables (added for the Herald
repository; standard library only).

usage: summarize.py --meta META --raw RAW --json OUT.json [--md REPORT.md]
                    [--run-seconds S]

Writes OUT.json; appends the ratio section to REPORT.md (when given);
prints the ratio section (plain text) on stdout.

Ratios are oriented so that > 1 always means Herald is better:
  throughput (W1, W2, W3, W5, W6 fast subscriber): Herald / peer
  latency (W4 p50, p99) and memory (W6 broker RSS peak): peer / Herald
"Best peer" = the best median among the peer variants; for throughput only
peers that delivered everything (median delivered fraction >= 0.9995) are
eligible: a lossy rate is a rate of partial delivery, not a throughput.
"""
import argparse
import json
import re
import statistics
import sys

HERALD = ["herald", "herald-backpressure"]
PEERS = ["mosquitto", "redis", "redis-nolimit", "nats", "dbus-daemon", "dbus-broker", "zmq", "zmq-nodrop"]
LOSSLESS = 0.9995
LABEL = {
    "herald": "herald (drop)",
    "herald-backpressure": "herald-backpressure",
}
LIST_FIELDS = {"fracs", "rates", "sub_extras"}

PAIR = re.compile(r'(\w+)=("[^"]*"|\S*)')


def num(x):
    try:
        return int(x)
    except ValueError:
        try:
            return float(x)
        except ValueError:
            return x


def parse_line(line):
    """'variant=v wl=W1 rep=1 RESULT k=v ...' -> dict (numbers converted)."""
    d = {}
    for k, v in PAIR.findall(line):
        if v.startswith('"'):
            d[k] = v[1:-1]
        elif k in LIST_FIELDS:
            d[k] = [num(x) for x in v.split(",") if x != ""]
        else:
            d[k] = num(v)
    return d


def med(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return statistics.median(xs) if xs else None


def read_meta(path):
    meta = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                k, v = line.split("=", 1)
                meta[k] = v
    return meta


def summarize(runs):
    """medians per (variant, workload) over the status=ok repetitions."""
    cells = {}
    for r in runs:
        key = (r.get("variant"), r.get("wl"))
        c = cells.setdefault(key, {"ok": [], "failed": 0})
        if r.get("status") == "ok":
            c["ok"].append(r)
        else:
            c["failed"] += 1
    out = {}
    for (v, w), c in cells.items():
        ok = c["ok"]
        s = {"runs_ok": len(ok), "runs_failed": c["failed"]}
        if ok:
            if ok[0].get("mode") in ("lat", "rr"):
                for f in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us", "rps", "broker_cpu", "broker_hwm_kb"):
                    s[f] = med([r.get(f) for r in ok])
                s["lost"] = sum(r.get("lost", 0) for r in ok)
            else:
                for f in ("rate", "mbps", "frac_min", "frac_avg", "window_s", "pub_rate", "broker_cpu",
                          "broker_hwm_kb", "sys_cpu", "other_cpu", "sub_extra"):
                    s[f] = med([r.get(f) for r in ok])
                s["disc"] = sum(r.get("disc", 0) for r in ok)
                s["gaps"] = sum(r.get("gaps", 0) for r in ok)
                nsub = min(len(r.get("fracs", [])) for r in ok)
                s["fracs"] = [med([r["fracs"][i] for r in ok]) for i in range(nsub)]
                s["rates"] = [med([r["rates"][i] for r in ok if len(r.get("rates", [])) > i]) for i in range(nsub)]
                nx = min(len(r.get("sub_extras", [])) for r in ok)
                s["sub_extras"] = [med([r["sub_extras"][i] for r in ok]) for i in range(nx)]
        out.setdefault(v, {})[w] = s
    return out


# (workload, metric key, label, unit, higher_is_better, getter, delivered getter)
def _w6fast(s):
    return s["rates"][1] if s.get("rates") and len(s["rates"]) > 1 else None


def _w6fastfrac(s):
    return s["fracs"][1] if s.get("fracs") and len(s["fracs"]) > 1 else None


METRICS = [
    ("W1", "W1 1->1 64 B", "msg/s", True, lambda s: s.get("rate"), lambda s: s.get("frac_min")),
    ("W2", "W2 1->8 64 B (aggregate)", "deliveries/s", True, lambda s: s.get("rate"), lambda s: s.get("frac_min")),
    ("W3", "W3 4->1 64 B", "msg/s", True, lambda s: s.get("rate"), lambda s: s.get("frac_min")),
    ("W5", "W5 1->1 4 KiB", "MB/s", True, lambda s: s.get("mbps"), lambda s: s.get("frac_min")),
    ("W4", "W4 round trip p50", "us", False, lambda s: s.get("p50_us"), None),
    ("W4", "W4 round trip p99", "us", False, lambda s: s.get("p99_us"), None),
    ("W8", "W8 request/reply p50", "us", False, lambda s: s.get("p50_us"), None),
    ("W8", "W8 request/reply p99", "us", False, lambda s: s.get("p99_us"), None),
    ("W8", "W8 requests/s (one in flight)", "req/s", True, lambda s: s.get("rps"), None),
    ("W6", "W6 fast subscriber (other one stalled 2 s)", "msg/s", True, _w6fast, _w6fastfrac),
    ("W6", "W6 broker RSS peak", "MiB", False, lambda s: s["broker_hwm_kb"] / 1024 if s.get("broker_hwm_kb") else None, None),
]


def ratios(summary):
    rows = []
    for wl, label, unit, higher, get, getfrac in METRICS:
        cands = []
        lossy_better = []
        for p in PEERS:
            s = summary.get(p, {}).get(wl)
            if not s or not s.get("runs_ok"):
                continue
            val = get(s)
            if val is None:
                continue
            frac = getfrac(s) if getfrac else None
            if getfrac and (frac is None or frac < LOSSLESS):
                lossy_better.append((p, val, frac))
                continue
            cands.append((p, val, frac))
        best = None
        if cands:
            best = max(cands, key=lambda t: t[1]) if higher else min(cands, key=lambda t: t[1])
        for h in HERALD:
            s = summary.get(h, {}).get(wl)
            if not s or not s.get("runs_ok"):
                if h in summary and wl in summary[h]:
                    rows.append({"workload": wl, "metric": label, "unit": unit, "herald_variant": h, "failed": True})
                continue
            hv = get(s)
            hf = getfrac(s) if getfrac else None
            row = {"workload": wl, "metric": label, "unit": unit, "higher_is_better": higher,
                   "herald_variant": h, "herald_value": hv, "herald_delivered": hf,
                   "herald_lossless": (hf is None or hf >= LOSSLESS)}
            if wl in ("W4", "W8"):
                row["herald_lost"] = s.get("lost")
            if wl == "W6":
                row["stalled_sub_delivered"] = s["fracs"][0] if s.get("fracs") else None
                row["stalled_sub_announced_lost"] = s["sub_extras"][0] if s.get("sub_extras") else None
                row["fast_sub_announced_lost"] = s["sub_extras"][1] if len(s.get("sub_extras", [])) > 1 else None
                row["disconnects"] = s.get("disc")
            if best and hv:
                row.update({"best_peer": best[0], "peer_value": best[1], "peer_delivered": best[2],
                            "ratio": (hv / best[1]) if higher else (best[1] / hv)})
            if getfrac and best:
                row["faster_lossy_peers"] = [
                    {"peer": p, "value": v, "delivered": f} for p, v, f in lossy_better
                    if (v > best[1] if higher else v < best[1])]
            rows.append(row)
    return rows


def fmt_val(v, unit):
    if v is None:
        return "-"
    if unit in ("msg/s", "deliveries/s"):
        return f"{v / 1e6:.2f} M" if v >= 1e6 else f"{v / 1e3:.0f} k"
    if unit == "MB/s":
        return f"{v:.0f}"
    if unit == "us":
        return f"{v:.1f}"
    if unit == "MiB":
        return f"{v:.1f}"
    return str(v)


def fmt_frac(f):
    return "-" if f is None else f"{f:.3f}"


def loss_accounting(runs):
    """Herald throughput runs: delivered + messages announced lost by DROPPED
    must equal subscribers x published (no silent loss)."""
    ok, bad, lossy = 0, [], 0
    for r in runs:
        if not str(r.get("variant", "")).startswith("herald") or r.get("mode") != "tput" or r.get("status") != "ok":
            continue
        want = r["subs"] * r["expected_per_sub"]
        got = r["delivered"] + r.get("sub_extra", 0)
        if r.get("sub_extra", 0) > 0:
            lossy += 1
        if got == want and r.get("disc", 0) == 0:
            ok += 1
        else:
            bad.append(f"{r['variant']} {r['wl']} rep {r['rep']}: delivered {r['delivered']} + announced "
                       f"{r.get('sub_extra', 0)} vs {want} published, disconnects {r.get('disc', 0)}")
    return {"runs_exact": ok, "runs_with_loss": lossy, "mismatches": bad}


def ratio_tables(rows, summary, meta, run_seconds, acct=None):
    md = []
    md.append("## Herald / best peer")
    md.append("")
    md.append("Medians over the repetitions of this run. **Ratio > 1 means Herald is better**: throughput = Herald / peer; "
              "latency and memory = peer / Herald. \"Best peer\" = best median among "
              + ", ".join(PEERS) + "; for throughput only peers that delivered everything (median delivered fraction "
              f">= {LOSSLESS}) count, since a lossy rate is a rate of partial delivery. \"delivered\" = messages received / "
              "published (W1-W5: the least-served subscriber; W6: the fast subscriber). Herald `drop` (the default) loses "
              "messages when a subscriber falls 8 MiB behind (and says so with DROPPED frames); `herald-backpressure` "
              "is lossless.")
    md.append("")
    md.append("| workload | metric | Herald variant | Herald | delivered | best peer | peer | peer delivered | ratio (>1: Herald better) |")
    md.append("|---|---|---|---|---|---|---|---|---|")
    notes = []
    for r in rows:
        if r.get("failed"):
            md.append(f"| {r['workload']} | {r['metric']} | {r['herald_variant']} | FAILED | | | | | |")
            continue
        unit = r["unit"]
        hdel = fmt_frac(r.get("herald_delivered"))
        if r.get("herald_delivered") is not None and not r["herald_lossless"]:
            hdel += " (partial)"
        if r["workload"] == "W4" and r.get("herald_lost"):
            hdel = f"{r['herald_lost']} lost"
        ratio = f"**{r['ratio']:.2f}**" if "ratio" in r else "-"
        md.append(f"| {r['workload']} | {r['metric']} ({unit}) | {r['herald_variant']} | {fmt_val(r.get('herald_value'), unit)} | "
                  f"{hdel} | {r.get('best_peer', '-')} | {fmt_val(r.get('peer_value'), unit)} | "
                  f"{fmt_frac(r.get('peer_delivered'))} | {ratio} |")
        for lp in r.get("faster_lossy_peers", []):
            n = (f"{r['workload']} {r['metric']}: {lp['peer']} shows {fmt_val(lp['value'], unit)} {unit} but delivered only "
                 f"{fmt_frac(lp['delivered'])} (not counted as best peer)")
            if n not in notes:
                notes.append(n)
    md.append("")
    w6 = [r for r in rows if r["workload"] == "W6" and not r.get("failed") and "stalled_sub_delivered" in r]
    seen = set()
    for r in w6:
        if r["herald_variant"] in seen:
            continue
        seen.add(r["herald_variant"])
        lost = r.get("stalled_sub_announced_lost")
        fast = r.get("fast_sub_announced_lost")
        notes.append(f"W6 {r['herald_variant']}: stalled subscriber delivered {fmt_frac(r.get('stalled_sub_delivered'))}, "
                     f"loss announced by DROPPED: {int(lost) if lost is not None else '-'} messages (median); "
                     f"fast subscriber: {int(fast) if fast is not None else '-'} messages announced lost (median); "
                     f"subscriber disconnects (all reps): {r.get('disconnects', 0)}")
    if acct is not None:
        t = (f"Herald loss accounting: in {acct['runs_exact']} of {acct['runs_exact'] + len(acct['mismatches'])} Herald "
             f"throughput runs, messages delivered + messages announced lost by DROPPED frames = messages published "
             f"(x subscribers), with no disconnect; {acct['runs_with_loss']} of those runs lost messages (drop policy).")
        if acct["mismatches"]:
            t += " Mismatches: " + "; ".join(acct["mismatches"])
        notes.append(t)
    if notes:
        for n in notes:
            md.append(f"- {n}")
        md.append("")
    if run_seconds:
        md.append(f"Whole compare.sh run (reps={meta.get('reps', '?')}; heraldd and client builds, every timed run): "
                  f"{run_seconds // 60} min {run_seconds % 60} s.")
        md.append("")
    return md


def text_table(rows):
    out = ["Herald / best peer (medians; ratio > 1 = Herald better; throughput Herald/peer, latency & RSS peer/Herald)", ""]
    hdr = ("workload", "metric", "herald variant", "Herald", "deliv.", "best peer", "peer", "peer deliv.", "ratio")
    lines = []
    for r in rows:
        if r.get("failed"):
            lines.append((r["workload"], r["metric"], r["herald_variant"], "FAILED", "", "", "", "", ""))
            continue
        unit = r["unit"]
        hdel = fmt_frac(r.get("herald_delivered"))
        if r.get("herald_delivered") is not None and not r["herald_lossless"]:
            hdel += "*"
        if r["workload"] == "W4":
            hdel = f"lost {r.get('herald_lost', 0)}"
        lines.append((r["workload"], f"{r['metric']} ({unit})", r["herald_variant"], fmt_val(r.get("herald_value"), unit),
                      hdel, r.get("best_peer", "-"), fmt_val(r.get("peer_value"), unit),
                      fmt_frac(r.get("peer_delivered")), f"{r['ratio']:.2f}" if "ratio" in r else "-"))
    widths = [max(len(str(x[i])) for x in lines + [hdr]) for i in range(len(hdr))]
    out.append("  ".join(str(h).ljust(widths[i]) for i, h in enumerate(hdr)))
    out.append("  ".join("-" * w for w in widths))
    for l in lines:
        out.append("  ".join(str(x).ljust(widths[i]) for i, x in enumerate(l)))
    out.append("")
    out.append("* = partial delivery (Herald drop policy shed messages; every loss was announced by DROPPED frames)")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meta", required=True)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--md")
    ap.add_argument("--run-seconds", type=int, default=0)
    a = ap.parse_args()

    meta = read_meta(a.meta)
    runs = []
    with open(a.raw) as f:
        for line in f:
            if "RESULT" in line:
                runs.append(parse_line(line.strip()))
    summary = summarize(runs)
    rows = ratios(summary)
    acct = loss_accounting(runs)
    other = [r["other_cpu"] for r in runs if r.get("mode") == "tput" and r.get("status") == "ok"
             and isinstance(r.get("other_cpu"), (int, float))]
    interference = {
        "other_cpu_median_pct": round(statistics.median(other), 1) if other else None,
        "other_cpu_p90_pct": round(sorted(other)[int(0.9 * (len(other) - 1))], 1) if other else None,
        "runs": len(other),
        "what": "whole-machine busy minus broker and client CPU over each throughput run's window, % of one core",
    }

    reps_scale = dict(PAIR.findall(meta.get("reps", "")))
    reps = meta.get("reps", "").split()[0] if meta.get("reps") else None
    n_table = {}
    for k, v in meta.items():
        m = re.match(r"n_(.+)_(W\d)$", k)
        if m:
            n_table.setdefault(m.group(1), {})[m.group(2)] = int(v)
    versions = {k[4:]: v for k, v in meta.items() if k.startswith("ver_")}
    doc = {
        "format": "herald-peers-comparison/1",
        "machine": {
            "date_utc": meta.get("date_utc"),
            "nproc": num(meta.get("nproc", "0")),
            "cpu": meta.get("cpu"),
            "hypervisor": meta.get("hypervisor"),
            "memory": meta.get("mem"),
            "kernel": meta.get("uname"),
            "debian": meta.get("debian"),
            "gcc": meta.get("gcc"),
            "swift": meta.get("swift"),
        },
        "herald": {
            "heraldd_version": meta.get("ver_heraldd"),
            "commit": meta.get("herald_commit"),
            "heraldd_built_utc": meta.get("heraldd_built"),
        },
        "package_versions": versions,
        "config": {
            "reps": num(reps) if reps else None,
            "scale": num(reps_scale.get("scale", "1")),
            "variants": sorted({r.get("variant") for r in runs}, key=lambda v: (HERALD + PEERS).index(v)
                               if v in HERALD + PEERS else 99),
            "workloads": sorted({r.get("wl") for r in runs}),
            "n": n_table,
            "run_seconds": a.run_seconds or None,
        },
        "runs": runs,
        "summary": summary,
        "ratios": rows,
        "herald_loss_accounting": acct,
        "interference": interference,
        "notes": {
            "ratio": "> 1 means Herald is better: throughput Herald/peer, latency and RSS peer/Herald",
            "best_peer": f"best median among peer variants; throughput: only peers with median delivered >= {LOSSLESS}",
            "sub_extra": "herald variants: messages announced lost by DROPPED frames, summed over subscribers "
                         "(sub_extras: per subscriber); other peers: their tp_extra counter (see peers/t_*.c)",
        },
    }
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    if a.md:
        # the ratio section goes first, before the detailed tables
        with open(a.md) as f:
            text = f.read()
        lines = ratio_tables(rows, summary, meta, a.run_seconds, acct)
        om = interference["other_cpu_median_pct"]
        if om is not None:
            lines.append(f"Interference: other jobs used a median {om:.0f}% (90th percentile {interference['other_cpu_p90_pct']:.0f}%) "
                         "of one core during the timed windows (\"not ours\" below; 200% = both cores). "
                         + ("Absolute rates are then lower than on a quiet machine; the ratios come from the same run, "
                            "but interference varies from run to run." if om > 20 else "The machine was quiet."))
            lines.append("")
        section = "\n".join(lines) + "\n"
        i = text.find("\n## ")
        text = text + "\n" + section if i < 0 else text[:i + 1] + section + text[i:]
        with open(a.md, "w") as f:
            f.write(text)
    print("\n".join(text_table(rows)))
    print(f"Herald loss accounting: delivered + announced (DROPPED) = published in {acct['runs_exact']} of "
          f"{acct['runs_exact'] + len(acct['mismatches'])} throughput runs"
          + ("" if not acct["mismatches"] else "; MISMATCH: " + "; ".join(acct["mismatches"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
