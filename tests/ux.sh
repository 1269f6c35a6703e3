#!/bin/bash
# Seeing a run: the metrics file (valid JSON lines, read by Python's json,
# every step once after a stop and a resume, the VAE's reconstruction and
# KL terms apart), inspect on a known checkpoint, plot of two runs into a
# PNG of the expected size, and the manual page.
. "$(dirname "$0")/lib.sh"
make_synthetic_data || { bad "synthetic data"; finish; exit 1; }
PY=$(command -v /usr/bin/python3 || command -v python3)
V="train --data $TESTTMP/data --batch 32 --hidden 64,32 --log-every 2 --eval-every 6 --steps 20"
timeout 120 $MPI -np 2 "$TRAINER" $V --run-dir "$TESTTMP/a" --stop-at 9 >/dev/null 2>&1
timeout 120 $MPI -np 2 "$TRAINER" $V --run-dir "$TESTTMP/a" --resume auto >/dev/null 2>&1 ||
    bad "resumed run"
timeout 120 $MPI -np 2 "$TRAINER" $V --run-dir "$TESTTMP/b" --lr 3e-3 >/dev/null 2>&1 || bad "second run"
check=$("$PY" - "$TESTTMP/a/metrics.jsonl" <<'PYEOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
seen = set()
for r in rows:
    key = (r["kind"], r["step"])
    assert key not in seen, f"duplicate {key}"
    seen.add(key)
train = [r for r in rows if r["kind"] == "train"]
assert [r["step"] for r in train] == list(range(2, 21, 2)), [r["step"] for r in train]
assert all("recon" in r and "kl" in r and "lr" in r and "samples_per_s" in r for r in train)
assert abs(train[-1]["loss"] - train[-1]["recon"] - train[-1]["kl"]) < 1e-3 * train[-1]["loss"]
evals = [r["step"] for r in rows if r["kind"] == "eval"]
assert evals == [6, 12, 18], evals
assert [r["step"] for r in rows if r["kind"] == "final"] == [20]
print(f"{len(rows)} lines, steps {train[0]['step']}..{train[-1]['step']}, evals {evals}")
PYEOF
)
[ $? = 0 ] && ok "metrics.jsonl after a stop at 9 and a resume: $check" || bad "metrics.jsonl: $check"
# MFU: the achieved rate over the measured peak, below 100%, and the
# figures it prints agree with each other (and the peak is cached in
# XDG_CACHE_HOME, which lib.sh points into the test's own folder)
timeout 120 $MPI -np 2 "$TRAINER" $V --run-dir "$TESTTMP/m" --steps 30 >"$TESTTMP/m.log" 2>&1 || bad "MFU run"
line=$(grep '^final:' "$TESTTMP/m.log")
if awk '{ for (i = 1; i <= NF; i++) { if ($i == "MFU") m = $(i + 1) + 0; if ($i == "GFLOP/s" && $(i - 2) == "(") g = $(i - 1) + 0;
          if ($i == "peak)") p = $(i - 2) + 0 } }
        END { d = 100 * g / p - m; if (d < 0) d = -d; # the figures are rounded for print
              exit !(m > 0 && m < 100 && p > 0 && d <= 0.02 * m + 0.1) }' <<<"$(sed 's/(\([0-9.]*\) GFLOP/( \1 GFLOP/' <<<"$line")" &&
    grep -q "AVX\|SSE" "$TESTTMP/cache/trainer/peak"; then
    ok "MFU below 100% and consistent: $(grep -o 'MFU.*peak)' <<<"$line")"
else
    bad "MFU: $line; cache: $(cat "$TESTTMP/cache/trainer/peak" 2>&1)"
fi
out=$("$TRAINER" inspect "$TESTTMP/a/checkpoint.h5")
if grep -q "^model: vae" <<<"$out" && grep -q "^step: 20, epoch 1.00" <<<"$out" &&
    grep -q "written by: -np 2, 8 lanes, seed 1, OpenBLAS kernel $("$TRAINER" --version | head -1 | sed 's/.*OpenBLAS kernel \([A-Za-z0-9]*\).*/\1/')" <<<"$out" &&
    grep -q "/params ok; /adam_m ok; /adam_v ok" <<<"$out" && grep -q "enc.fc1.weight *64 x 784 *50176" <<<"$out"; then
    ok "inspect: $(grep -E '^(model|step|checksums)' <<<"$out" | tr '\n' ' ')"
else
    bad "inspect: $out"
fi
cp "$TESTTMP/a/checkpoint.h5" "$TESTTMP/bad.h5"
"$TOP_BUILDDIR/tests/make_data" poke "$TESTTMP/bad.h5" /adam_v/dec.out.bias 2 0.5
if ! out=$("$TRAINER" inspect "$TESTTMP/bad.h5") && grep -q "/adam_v checksum mismatch" <<<"$out"; then
    ok "inspect names a damaged group and exits 2"
else
    bad "inspect of a damaged checkpoint: $out"
fi
if command -v gnuplot >/dev/null; then
    if "$TRAINER" plot "$TESTTMP/a" "$TESTTMP/b" --out "$TESTTMP/p.png" --title "two VAE runs" >/dev/null &&
        [ "$(od -An -tx1 -j16 -N8 "$TESTTMP/p.png" | tr -d ' \n')" = 000003e800000258 ]; then
        ok "plot: two runs into a 1000 x 600 PNG"
    else
        bad "plot: no 1000 x 600 PNG"
    fi
else
    bad "gnuplot is not installed (jobs/install-deps.sh installs gnuplot-nox)"
fi
if "$TRAINER" --man | grep -q '^\.TH TRAINER 1' && "$TRAINER" --man | man -l - 2>/dev/null | grep -q 'grad-clip'; then
    ok "the manual page renders"
elif "$TRAINER" --man | grep -q '^\.TH TRAINER 1'; then
    ok "the manual page is roff (man is not installed to render it)"
else
    bad "trainer --man"
fi
finish
