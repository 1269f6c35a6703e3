#!/bin/bash
# The step-time model, fitted on this machine's namespace hosts
# (tests/multinode/hosts.sh): needs root, iproute2 and a build.
#
#   bash jobs/scaling.sh            measure, fit, print the predictions
#   FIT_ONLY=DIR bash jobs/scaling.sh   fit again from DIR's measurements
#
# 1. The program's own reductions (trainer bench-comm: the lane tree's and
#    the lane sum's) on 2 and 4 hosts, one rank each, with every host's link
#    shaped to each of $RATES, for a range of sizes.
# 2. gpt-kjv on 2 unshaped hosts: the time a step computes,
#    which is the step's time less what rank 0 waited for the sums.
#    Sizes: 1 Ki parameters, where the latency shows, then from 256 Ki up;
#    between them a shaped link lets a whole reduction through its token
#    bucket's burst (256 kB) at full speed, which real links do not and the
#    model leaves out.
# 3. A fit of
#        t = alpha * messages + bytes * (c + w * 8 / rate)
#    per reduction: alpha, a message's latency (the median over the
#    smallest size, t / messages); then c and w by least squares of the
#    relative error over the larger sizes; c, a byte's cost in the
#    hosts (copies, TCP); w, the wire's overhead over its nominal rate. A
#    reduction over N ranks sends 2 log2(N) messages in sequence and
#    (N - 1)/N of the buffer each way: 8 bytes a parameter in the tree, 12
#    in the lane sum. Fitted on every rate but $HOLD_OUT, which is kept out
#    and predicted: the fit's error on held-out points.
# 4. The predicted weak-scaling efficiency, compute / (compute + reduction),
#    at 8 to 64 nodes on 10, 25 and 100 Gbit/s links, for gpt-kjv and a
#    model ten times its size (ten times the parameters and the compute),
#    the reduction not overlapped with compute (README: Several nodes).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. jobs/env.sh
T=${TRAINER:-build/bin/trainer}
RATES=${RATES:-"500mbit 1gbit 2gbit 10gbit"}
HOLD_OUT=${HOLD_OUT:-2gbit}
SIZES=${SIZES:-"1024,262144,1048576,4194304"}
REPEATS=${REPEATS:-7}
export MN_PREFIX=trs MN_NET=10.79.0 MN_BRIDGE=trsbr0
H=tests/multinode/hosts.sh
out=${FIT_ONLY:-$(mktemp -d /tmp/scaling-XXXXXX)}
fitted=0
for rate in $RATES; do [ "$rate" != "$HOLD_OUT" ] && fitted=$((fitted + 1)); done
if [ "$fitted" -lt 2 ]; then # c and w are told apart only across rates
    echo "scaling.sh: RATES needs two rates besides HOLD_OUT ($HOLD_OUT) to fit, not '$RATES'" >&2
    exit 2
fi

on_hosts() { # N ARGS...: the trainer on hosts n1..nN, one rank each, over TCP
    local n=$1 hosts=""
    shift
    for i in $(seq "$n"); do hosts+="${hosts:+,}n$i:1"; done
    mpirun --host "$hosts" -np "$n" $MPI_FLAGS --mca plm_rsh_agent "$top/tests/multinode/rsh" \
        --mca btl tcp,self --mca btl_tcp_if_include "$MN_NET.0/24" \
        --mca oob_tcp_if_include "$MN_NET.0/24" "$T" "$@"
}

if [ -z "${FIT_ONLY:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "scaling.sh: makes network namespaces: run it as root" >&2; exit 2; }
    trap '"$H" down' EXIT
    "$H" up 4
    echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $("$T" --version)" | tee "$out/machine.txt"
    : >"$out/comm.txt"
    for rate in $RATES; do
        "$H" shape "$rate"
        for n in 2 4; do
            on_hosts "$n" bench-comm --sizes "$SIZES" --repeats "$REPEATS" | grep -v '^#' |
                while read -r params tb ts lb ls; do
                    echo "$n $("$H" bits "$rate") $rate $params $tb $ts $lb $ls"
                done | tee -a "$out/comm.txt"
        done
    done
    "$H" shape none
    # the compute of a step: 2 hosts, one core each, the step less the wait
    on_hosts 2 train --config jobs/gpt-kjv.conf --steps 30 --eval-every 0 --sample-every 0 \
        --run-dir "$out/run-gpt" --checkpoint-every 0 --log-every 1000 >"$out/run-gpt.log" 2>&1
    grep -E '^(final|communication):' "$out/run-gpt.log"
fi

/usr/bin/python3 - "$out" "$HOLD_OUT" <<'EOF'
import math, re, sys
out, hold = sys.argv[1], sys.argv[2]
rows = [l.split() for l in open(out + "/comm.txt") if l.strip()]

def solve(A, b, keep):
    # least squares by the normal equations over the unknowns in keep (the
    # others 0)
    n = len(keep)
    M = [[sum(a[i] * a[j] for a in A) for j in keep] + [sum(a[i] * y for a, y in zip(A, b))]
         for i in keep]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(M[r][c]))
        M[c], M[p] = M[p], M[c]
        for r in range(n):
            if r != c:
                f = M[r][c] / M[c][c]
                M[r] = [x - f * y for x, y in zip(M[r], M[c])]
    x = [0.0] * 3
    for i, k in enumerate(keep):
        x[k] = M[i][n] / M[i][i]
    return x

def solve3(A, b):
    # c and w; no negative cost: a term that comes out negative is dropped
    keep = [1, 2]
    x = solve(A, b, keep)
    while any(x[k] < 0 for k in keep) and len(keep) > 1:
        keep.remove(min(keep, key=lambda k: x[k]))
        x = solve(A, b, keep)
    return x

def features(nodes, rate, nbytes):
    return [2 * math.log2(nodes), nbytes, 8 * nbytes / rate]

fits = {}
print("\n== fit: t = alpha * messages + bytes * (c + w * 8 / rate), relative error in %")
for name, bcol, tcol in (("tree", 4, 5), ("lanesum", 6, 7)):
    pts = [(int(r[0]), float(r[1]), r[2], float(r[bcol]), float(r[tcol])) for r in rows]
    train = [p for p in pts if p[2] != hold]
    test = [p for p in pts if p[2] == hold]
    # alpha from the smallest size (its bytes cost next to nothing), then c
    # and w by relative least squares on the rest, alpha's part taken off
    small = min(p[3] for p in train)
    lat = sorted(p[4] / features(p[0], p[1], p[3])[0] for p in train if p[3] == small)
    alpha = lat[len(lat) // 2]
    big = [p for p in train if p[3] > small]
    A = [[f / p[4] for f in features(p[0], p[1], p[3])] for p in big]
    b = [1.0 - alpha * features(p[0], p[1], p[3])[0] / p[4] for p in big]
    _, c, w = solve3([[0.0] + a[1:] for a in A], b)
    fits[name] = (alpha, c, w)
    def err(ps):
        e = sorted(abs(alpha * f[0] + c * f[1] + w * f[2] - p[4]) / p[4] * 100
                   for p in ps for f in [features(p[0], p[1], p[3])])
        return (e[len(e) // 2], e[-1]) if e else (float("nan"), float("nan"))
    ft, ht = err(train), err(test)
    print(f"{name:8s} alpha {alpha * 1e6:8.1f} us  c {c * 1e9:7.3f} ns/byte  w {w:5.3f}"
          f"  (beta at 1 Gbit/s {(c + 8 * w / 1e9) * 1e9:6.2f} ns/byte, at 10 Gbit/s"
          f" {(c + 8 * w / 1e10) * 1e9:6.3f})")
    print(f"{'':8s} error on the {len(train)} fitted points: median {ft[0]:.1f}, largest {ft[1]:.1f};"
          f" on the {len(test)} held-out points ({hold}): median {ht[0]:.1f}, largest {ht[1]:.1f}")
    for p in test:
        f = features(p[0], p[1], p[3])
        pred = alpha * f[0] + c * f[1] + w * f[2]
        print(f"{'':8s}   held out: {p[0]} nodes, {p[2]:7s} {p[3] / 1e6:8.3f} MB sent:"
              f" measured {p[4] * 1e3:8.3f} ms, predicted {pred * 1e3:8.3f} ms")

def step_parts(log):
    text = open(log, errors="replace").read()
    m = re.search(r"train ([0-9.]+) (\w+)/s", text)
    w = re.search(r"waited ([0-9.]+) ms a step", text)
    p = re.search(r"model: ([0-9]+) parameters", text)
    b = re.search(r"lanes of ([0-9]+) rows", text)
    return float(m.group(1)), float(w.group(1)) / 1e3, int(p.group(1)), m.group(2)

def gpt_units_per_step():
    cfg = dict(l.split(" = ") for l in open("jobs/gpt-kjv.conf").read().splitlines()
               if " = " in l and not l.startswith("#"))
    return int(cfg["batch"]) * int(cfg["ctx"])

try:
    rate, wait, params, unit = step_parts(out + "/run-gpt.log")
except (OSError, AttributeError):
    sys.exit("no gpt-kjv run to take the compute time from")
step = gpt_units_per_step() / rate
compute = step - wait
print(f"\n== gpt-kjv on 2 unshaped hosts (one core each): {rate:.0f} {unit}/s, a step {step * 1e3:.1f} ms,"
      f" of which rank 0 waited {wait * 1e3:.1f} ms: compute {compute * 1e3:.1f} ms a step a node;"
      f" {params} parameters")
alpha, c, w = fits["lanesum"]
print("\n== predicted weak-scaling efficiency (the same batch a node; the lane sum, 12 bytes a"
      " parameter, not overlapped)")
print(f"{'model':22s} {'link':>9s} " + " ".join(f"{n:>7d}" for n in (8, 16, 32, 64)) + "   nodes")
for label, scale in (("gpt-kjv", 1), ("gpt-kjv x10", 10)):
    for gbit in (10, 25, 100):
        effs = []
        for n in (8, 16, 32, 64):
            nbytes = 12 * params * scale * (n - 1) / n
            t = alpha * 2 * math.log2(n) + nbytes * (c + 8 * w / (gbit * 1e9))
            effs.append(compute * scale / (compute * scale + t))
        print(f"{label:22s} {gbit:>4d} Gbit " + " ".join(f"{e * 100:6.1f}%" for e in effs))
print(f"\n(measurements in {out})")
EOF
