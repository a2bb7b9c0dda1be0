#!/bin/bash
# Who holds the core while a request thread waits (docs/performance.md, "Who holds the core").
#
# Reads a `perf sched record` file and, for each thread that preempted a tokio worker (switched
# it out while it was still runnable), prints how often, how long the worker then waited for
# the core in all, how many of those waits passed 0.5 ms, and the longest. A worker that parks
# (epoll_wait) is not counted: only waits for the core are.
#
#     target/release/sluice-bench --no-write --no-nginx --connections 1 --duration 2 \
#         --tail-seconds 25 --open-share 0 --no-profile &
#     sleep 12; perf sched record -a -o /tmp/sched.data -- sleep 8
#     docs/experiments/preemptions.sh /tmp/sched.data
set -euo pipefail
perf script -i "${1:?usage: $0 perf-sched.data}" 2>/dev/null | awk '
/sched:sched_switch/ {
    t = $4; sub(":", "", t); t += 0
    if ($0 ~ /prev_comm=tokio-rt-worker/ && $0 ~ /prev_state=R /) {
        match($0, /prev_pid=[0-9]+/); pid = substr($0, RSTART + 9, RLENGTH - 9)
        match($0, /next_comm=[^ ]+/); by[pid] = substr($0, RSTART + 10, RLENGTH - 10)
        since[pid] = t
    }
    if (match($0, /next_comm=tokio-rt-worker next_pid=[0-9]+/)) {
        pid = substr($0, RSTART, RLENGTH); sub(/.*next_pid=/, "", pid)
        if (pid in since) {
            wait = (t - since[pid]) * 1000; who = by[pid]
            n[who]++; total[who] += wait
            if (wait > 0.5) long[who]++
            if (wait > longest[who]) longest[who] = wait
            delete since[pid]
        }
    }
}
END {
    for (who in n)
        printf "%-18s %6d preemptions, %8.1f ms waited, %4d over 0.5 ms, longest %.2f ms\n",
            who, n[who], total[who], long[who], longest[who]
}' | sort -k2 -nr
