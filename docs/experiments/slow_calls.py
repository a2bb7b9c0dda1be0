#!/usr/bin/env python3
"""What held each slow call of a tail run (docs/performance.md, session 13).

Run the bench's tail run with --slow-ms, record the scheduler on every CPU meanwhile with
perf's timestamps on CLOCK_MONOTONIC (the clock the bench prints), then give both to this:

    target/release/sluice-bench --no-write --no-nginx --connections 1 --duration 1 \
        --tail-seconds 30 --open-share 0 --no-profile --slow-ms 1 2> /tmp/slow.txt &
    sleep 12; perf sched record -a -k CLOCK_MONOTONIC -o /tmp/sched.data -- sleep 15
    perf script -i /tmp/sched.data -F comm,pid,tid,cpu,time,event,trace > /tmp/sched.txt
    docs/experiments/slow_calls.py /tmp/sched.txt /tmp/slow.txt 2500

The last argument is the tail run's calls per second (its row in the bench's output).

For each slow call inside the recording, the time each thread ran on each CPU during the call
decides its class: another process or a kernel thread (not sluice, the bench, the mock or
idle) ran 0.4 ms or more of it -> "other process: <names>"; else sluice's writer ran 0.3 ms or
more -> "sluice: writer"; else sluice's checkpoint thread -> "sluice: checkpoint"; else "no
thread of these held a core" (both cores mostly idle: a wake-up that was late to land). It
prints the classes of every slow call and of the calls past the recording's p99.9 (its calls
estimated from the rate), and the p99.9 with the calls another process held left out.
"""
import bisect
import collections
import re
import sys

OURS = {"sluice", "sluice-bench", "sluice-mock"}
IDLE = re.compile(r"swapper/\d+")
SWITCH = re.compile(
    r"^\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch: prev_comm=.*? "
    r"prev_pid=\d+ .*?==> next_comm=(.*?) next_pid=(\d+)"
)
ANY = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+\[")
SLOW = re.compile(r"slow call: started at ([\d.]+) s \(CLOCK_MONOTONIC\), took ([\d.]+) ms")


def main(sched_path, slow_path, rate):
    owner = {}  # thread id -> process id, from the task each line was recorded on
    lines = open(sched_path).read().splitlines()
    for line in lines:
        m = ANY.match(line)
        if m:
            owner[int(m[3])] = int(m[2])
    # The process whose threads include the writer is sluice.
    names = {}
    for line in lines:
        m = SWITCH.match(line)
        if m and m[6] == "sqlite-writer":
            names[owner.get(int(m[7]), -1)] = "sluice"
    segs = collections.defaultdict(list)  # cpu -> [(start, end, who)]
    current = {}
    first = last = None
    for line in lines:
        m = SWITCH.match(line)
        if not m:
            continue
        cpu, t = int(m[4]), float(m[5])
        first = t if first is None else first
        last = t
        if cpu in current:
            segs[cpu].append((current[cpu][0], t, current[cpu][1]))
        comm, tid = m[6], int(m[7])
        pid = owner.get(tid, tid)
        if IDLE.fullmatch(comm):
            who = "idle"
        elif names.get(pid) == "sluice":
            who = "sluice:" + comm
        elif comm.startswith("sluice-bench") or comm.startswith("sluice-mock"):
            who = "load:" + comm
        else:
            # Some threads never show as the task an event was recorded on: named by thread id.
            who = f"{comm} (pid {pid})" if tid in owner and pid != tid else f"{comm} (thread {tid})"
        current[cpu] = (t, who)
    starts = {c: [s[0] for s in v] for c, v in segs.items()}
    calls = []
    for line in open(slow_path):
        m = SLOW.search(line)
        if m:
            calls.append((float(m[1]), float(m[2]) / 1e3))
    classes = []
    for t0, took in calls:
        if first is None or t0 < first or t0 + took > last:
            continue
        held = collections.Counter()
        for cpu, v in segs.items():
            i = max(0, bisect.bisect_right(starts[cpu], t0) - 1)
            while i < len(v) and v[i][0] < t0 + took:
                s, e, who = v[i]
                d = min(e, t0 + took) - max(s, t0)
                if d > 0:
                    held[who] += d
                i += 1
        others = {w: d for w, d in held.items() if w != "idle" and ":" not in w}
        if sum(others.values()) >= 0.4e-3:
            kind = "other process: " + " + ".join(sorted(w for w, d in others.items() if d > 1e-4))
        elif held["sluice:sqlite-writer"] >= 0.3e-3:
            kind = "sluice: writer"
        elif held["sluice:sqlite-checkpoi"] >= 0.3e-3:
            kind = "sluice: checkpoint"
        else:
            kind = "no thread of these held a core"
        classes.append((took, kind))
    if not classes:
        sys.exit("no slow call inside the recording")
    classes.sort(reverse=True)
    calls_in = rate * (last - first)
    top = max(1, int(calls_in / 1000))
    print(f"{len(classes)} slow calls of ~{calls_in:.0f} in {last - first:.1f} s of recording")
    if top <= len(classes):
        print(f"p99.9: {classes[top - 1][0] * 1e3:.3f} ms")
    ours = [c for c in classes if not c[1].startswith("other process")]
    rank = max(1, int((calls_in - (len(classes) - len(ours))) / 1000))
    if rank <= len(ours):
        print(f"p99.9 with the calls another process held left out: {ours[rank - 1][0] * 1e3:.3f} ms")
    for title, rows in (("every slow call", classes), (f"the slowest {top}", classes[:top])):
        print(f"{title} ({len(rows)}):")
        count = collections.Counter(k for _, k in rows)
        worst = {}
        for took, k in rows:
            worst[k] = max(worst.get(k, 0), took)
        for k, n in count.most_common():
            print(f"  {n:5d}  {k}  (slowest {worst[k] * 1e3:.2f} ms)")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 2500.0)
