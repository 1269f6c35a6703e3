#!/usr/bin/env python3
"""PyTorch reference of jobs/mt-kjv-es.conf for a side-by-side run: the same
pair shards (jobs/prepare-kjv-es.sh; read with Debian's python3-h5py), the
same shapes and recipe as trainer's seq2seq model: nn.Transformer with 3
encoder and 3 decoder pre-LayerNorm blocks (final LayerNorms included),
width 256, 4 heads, GELU MLPs of 1024, dropout 0.1; one token embedding for
the source, the decoder input and the output; learned positions a side;
batches of 64 pairs padded to their longest, loss on real target tokens;
AdamW lr 1e-3, 200 warmup steps then a cosine to 1e-4, weight decay 0.01 on
the matrices, gradient norm clipped at 1. The embeddings start as trainer's,
N(0, 0.02); the Transformer's layers keep PyTorch's own initialisation.

  OPENBLAS_NUM_THREADS=2 /usr/bin/python3 jobs/reference/mt_kjv_es.py --steps 1100 --threads 2 [--stop-at 500]

Prints pairs/s over the training steps, the validation loss in nats per
target token and bits per target byte, and chrF (character 1..6-grams,
beta 2, spaces out) of greedy translations of the first 64 validation pairs,
as `trainer train --config jobs/mt-kjv-es.conf` does."""
import argparse, glob, math, os, time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--data", default="data/kjv-es")
p.add_argument("--steps", type=int, default=1100, help="the schedule's length")
p.add_argument("--stop-at", type=int, default=0, help="stop after this step (0: --steps)")
p.add_argument("--batch", type=int, default=64)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--warmup", type=int, default=200)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--seed", type=int, default=1)
p.add_argument("--chrf-pairs", type=int, default=64)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.set_flush_denormal(True)
torch.manual_seed(a.seed)


def load(split):
    pairs, merges, L = [], None, None
    for path in sorted(glob.glob(os.path.join(a.data, split + "-*.h5"))):
        with h5py.File(path, "r") as f:
            L = int(f.attrs["max_tokens"])
            merges = f["merges"][()]
            src, tgt = f["src_tokens"][()], f["tgt_tokens"][()]
            sl, tl = f["src_lengths"][()], f["tgt_lengths"][()]
            so = np.concatenate([[0], np.cumsum(sl)]).astype(np.int64)
            to = np.concatenate([[0], np.cumsum(tl)]).astype(np.int64)
            for i in range(len(sl)):
                pairs.append((src[so[i]:so[i + 1]].astype(np.int64), tgt[to[i]:to[i + 1]].astype(np.int64)))
    return pairs, merges, L


train, merges, L = load("train")
val, _, _ = load("val")
V = 256 + len(merges) + 3
BOS, END, PAD = V - 3, V - 2, V - 1
tok_bytes = [bytes([i]) for i in range(256)]
for x, y in merges:
    tok_bytes.append(tok_bytes[x] + tok_bytes[y])


def text(ids):
    return b"".join(tok_bytes[i] for i in ids if i < 256 + len(merges))


class Seq2Seq(nn.Module):
    def __init__(self, C=256, heads=4, layers=3, ff=1024, dropout=0.1):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe_enc = nn.Embedding(L, C)
        self.wpe_dec = nn.Embedding(L, C)
        self.t = nn.Transformer(C, heads, layers, layers, ff, dropout, activation="gelu",
                                batch_first=True, norm_first=True)
        for e in (self.wte, self.wpe_enc, self.wpe_dec):  # as trainer: N(0, 0.02)
            nn.init.normal_(e.weight, std=0.02)

    def forward(self, src, din):
        S, T = src.shape[1], din.shape[1]
        x = self.wte(src) + self.wpe_enc(torch.arange(S))
        y = self.wte(din) + self.wpe_dec(torch.arange(T))
        causal = torch.triu(torch.full((T, T), float("-inf")), 1)
        h = self.t(x, y, tgt_mask=causal, src_key_padding_mask=src == PAD,
                   memory_key_padding_mask=src == PAD)
        return h @ self.wte.weight.T


def batch(items):
    S = max(len(s) for s, _ in items) + 1
    T = max(len(t) for _, t in items) + 1
    src = torch.full((len(items), S), PAD)
    din = torch.full((len(items), T), PAD)
    out = torch.full((len(items), T), -1)
    for i, (s, t) in enumerate(items):
        src[i, :len(s)] = torch.from_numpy(s)
        src[i, len(s)] = END
        din[i, 0] = BOS
        din[i, 1:len(t) + 1] = torch.from_numpy(t)
        out[i, :len(t)] = torch.from_numpy(t)
        out[i, len(t)] = END
    return src, din, out


def chrf(hyps, refs):
    match, hc, rc = [0.0] * 6, [0.0] * 6, [0.0] * 6
    for h, r in zip(hyps, refs):
        h = [c for c in h.decode("utf-8", "replace") if not c.isspace()]
        r = [c for c in r.decode("utf-8", "replace") if not c.isspace()]
        for n in range(1, 7):
            gh = {}
            for i in range(len(h) - n + 1):
                gh[tuple(h[i:i + n])] = gh.get(tuple(h[i:i + n]), 0) + 1
            gr = {}
            for i in range(len(r) - n + 1):
                gr[tuple(r[i:i + n])] = gr.get(tuple(r[i:i + n]), 0) + 1
            match[n - 1] += sum(min(c, gr.get(g, 0)) for g, c in gh.items())
            hc[n - 1] += max(len(h) - n + 1, 0)
            rc[n - 1] += max(len(r) - n + 1, 0)
    P = sum(m / h if h else 0 for m, h in zip(match, hc)) / 6
    R = sum(m / r if r else 0 for m, r in zip(match, rc)) / 6
    return 100 * 5 * P * R / (4 * P + R) if P + R else 0.0


@torch.no_grad()
def greedy(model, s):
    src = torch.full((1, len(s) + 1), END)
    src[0, :len(s)] = torch.from_numpy(s)
    out = [BOS]
    for _ in range(L - 1):
        logits = model(src, torch.tensor([out]))[0, -1]
        logits[BOS] = logits[PAD] = -float("inf")
        t = int(logits.argmax())
        if t == END:
            break
        out.append(t)
    return out[1:]


model = Seq2Seq()
decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "norm" not in n]
rest = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "norm" not in n)]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                        lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
print(f"reference seq2seq: {sum(p.numel() for p in model.parameters())} parameters, "
      f"{len(train)} train and {len(val)} validation pairs, torch {torch.__version__}, "
      f"{torch.get_num_threads()} torch thread(s), OPENBLAS_NUM_THREADS="
      f"{os.environ.get('OPENBLAS_NUM_THREADS', '-')}", flush=True)
rng = np.random.default_rng(a.seed)
t, window = 0.0, 0.0
last = a.stop_at or a.steps
for step in range(last):
    if step < a.warmup:
        lr = a.lr * (step + 1) / a.warmup
    else:
        q = (step - a.warmup) / max(1, a.steps - a.warmup)
        lr = a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * q)))
    for g in opt.param_groups:
        g["lr"] = lr
    t0 = time.perf_counter()
    model.train()
    src, din, out = batch([train[i] for i in rng.integers(0, len(train), a.batch)])
    loss = F.cross_entropy(model(src, din).reshape(-1, V), out.reshape(-1), ignore_index=-1)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    t += time.perf_counter() - t0
    window += loss.item()
    if (step + 1) % 50 == 0:  # the mean of the last 50 steps, as trainer prints
        print(f"step {step + 1}/{last} | loss {window / 50:.4f} nats/token | "
              f"{(step + 1) * a.batch / t:.0f} pairs/s", flush=True)
        window = 0.0
model.eval()
with torch.no_grad():
    nats, tokens, nbytes = 0.0, 0, 0
    for i in range(0, len(val), 64):
        src, din, out = batch(val[i:i + 64])
        nats += F.cross_entropy(model(src, din).reshape(-1, V), out.reshape(-1), ignore_index=-1,
                                reduction="sum").item()
        tokens += int((out >= 0).sum())
        nbytes += sum(len(text(tg)) for _, tg in val[i:i + 64])
n = min(a.chrf_pairs, len(val))
hyps = [text(greedy(model, s)) for s, _ in val[:n]]
print(f"  reference: {text(val[0][1]).decode()}\n  ours:      {hyps[0].decode('utf-8', 'replace')}")
print(f"final: step {last}, validation loss {nats / tokens:.4f} nats/token "
      f"({nats / nbytes / math.log(2):.4f} bits/byte), chrF {chrf(hyps, [text(tg) for _, tg in val[:n]]):.2f} "
      f"over the first {n} validation pairs, train {last * a.batch / t:.0f} pairs/s "
      f"({t:.1f} s training)", flush=True)
