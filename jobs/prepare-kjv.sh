#!/bin/bash
# The King James Bible from Debian's bible-kjv (4.3 MB), as 8 train and 8
# validation shards of bytes in data/kjv (the last 10% is validation), and
# of word ids (vocabulary 10,000) in data/kjv-words.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
TRAINER=${TRAINER:-build/bin/trainer}
mkdir -p data
[ -s data/kjv.txt ] || bible -l200 Gen1:1-Rev22:21 >data/kjv.txt
"$TRAINER" prepare --source text --input data/kjv.txt --out "${OUT:-data/kjv}" --shards "${SHARDS:-8}"
"$TRAINER" prepare --source text --tokens words --vocab 10000 --input data/kjv.txt \
    --out "${OUT_WORDS:-data/kjv-words}" --shards "${SHARDS:-8}"
