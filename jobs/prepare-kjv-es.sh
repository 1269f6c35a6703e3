#!/bin/bash
# The King James Version and the Spanish Reina-Valera 1909 (SWORD modules
# engKJV2006eb and spaRV1909eb, read by Debian's diatheke), paired verse by
# verse, as 8 train and 8 validation shards of sentence pairs in
# data/kjv-es (pair i is validation when i % 50 == 7), with a byte-level
# BPE of 8,000 tokens learned from the training pairs of both languages;
# pairs longer than 128 tokens a side are left out and counted.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
TRAINER=${TRAINER:-build/bin/trainer}
command -v diatheke >/dev/null || bash jobs/install-deps.sh
mkdir -p data/kjv-es-text
[ -s data/kjv-es-text/en.txt ] ||
    diatheke -b engKJV2006eb -f plain -k Gen1:1-Rev22:21 >data/kjv-es-text/en.txt
[ -s data/kjv-es-text/es.txt ] ||
    diatheke -b spaRV1909eb -f plain -k Gen1:1-Rev22:21 >data/kjv-es-text/es.txt
"$TRAINER" prepare --source parallel --input data/kjv-es-text/en.txt \
    --target data/kjv-es-text/es.txt --vocab "${VOCAB:-8000}" --max-tokens "${MAX_TOKENS:-128}" \
    --out "${OUT:-data/kjv-es}" --shards "${SHARDS:-8}"
"$TRAINER" inspect "${OUT:-data/kjv-es}/val-000.h5" | head -7
