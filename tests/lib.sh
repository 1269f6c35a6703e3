# Shared by the shell tests: where things are, how to start MPI jobs, and a
# small synthetic data set made once per test run.
set -u
TOP_BUILDDIR=${TOP_BUILDDIR:-$(pwd)}
TRAINER="$TOP_BUILDDIR/bin/trainer"
MPIRUN=${MPIRUN:-mpirun}
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# More ranks than cores must not spin each other to a halt.
MPI="$MPIRUN --oversubscribe --bind-to none --mca mpi_yield_when_idle 1"
TESTTMP=$(mktemp -d /tmp/trainer-test-XXXXXX)
trap 'rm -rf "$TESTTMP"' EXIT
# the measured peak (trainer/peak.c) is cached here, not in the user's home
export XDG_CACHE_HOME="$TESTTMP/cache"
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "PASS: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# Synthetic Fashion-MNIST-like IDX files, prepared into 8 shards.
make_synthetic_data() {
    mkdir -p "$TESTTMP/idx" &&
        "$TOP_BUILDDIR/tests/make_data" idx "$TESTTMP/idx" &&
        "$TRAINER" prepare --input "$TESTTMP/idx" --out "$TESTTMP/data" --shards 8 >/dev/null
}

# Synthetic verse-like text, prepared into 8 train and 8 validation shards.
make_synthetic_text() {
    "$TOP_BUILDDIR/tests/make_data" text "$TESTTMP/text.txt" &&
        "$TRAINER" prepare --source text --input "$TESTTMP/text.txt" --out "$TESTTMP/text" --shards 8 >/dev/null
}

# Synthetic sentence pairs: two texts of 500 verses as diatheke prints them,
# prepared into 8 train and 8 validation shards of pairs (BPE of 400
# tokens, at most 32 a side).
make_synthetic_pairs() {
    local lang
    for lang in en es; do
        awk -v lang=$lang 'BEGIN {
            split("la luz|el agua|la tierra|los cielos|el pueblo", es, "|");
            split("the light|the water|the earth|the heavens|the people", en, "|");
            for (b = 1; b <= 10; b++) for (v = 1; v <= 50; v++) {
                w = (b * 7 + v * 3) % 5 + 1; n = (b + v) % 4 + 1;
                if (lang == "en") text = "And " en[w] " was good " n " times in day " v ".";
                else text = "Y " es[w] " era buena " n " veces en el d\303\255a " v ".";
                print "Book" b " " b ":" v ": " text;
            }
        }' >"$TESTTMP/pairs-$lang.txt"
    done
    "$TRAINER" prepare --source parallel --input "$TESTTMP/pairs-en.txt" --target "$TESTTMP/pairs-es.txt" \
        --vocab 400 --max-tokens 32 --out "$TESTTMP/pairs" --shards 8 >/dev/null
}

# The parameter checksum a checkpoint stores.
params_checksum() {
    h5dump -a /params_fnv1a64 "$1" 2>/dev/null | sed -n 's/^ *(0): *//p'
}

finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" = 0 ]
}
