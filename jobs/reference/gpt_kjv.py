#!/usr/bin/env python3
"""PyTorch reference of gpt-kjv (jobs/gpt-kjv.conf) for a side-by-side run:
a byte-level GPT-2 layout (pre-LayerNorm blocks, learned positions, tied
embeddings, GELU with the tanh approximation), 4 blocks, 4 heads, width
256, context 128, batch 32, AdamW (0.9, 0.95), weight decay 0.1 on the
matrices, lr 1e-3 with 100 warmup steps and a cosine to 10%, clipping at 1.

  OPENBLAS_NUM_THREADS=2 /usr/bin/python3 jobs/reference/gpt_kjv.py [--steps 600]

Prints tokens/s over the training steps and the validation loss on 64 fixed
windows, every 100 steps and at the end."""
import argparse, math, os, random, time

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--text", default="data/kjv.txt")
p.add_argument("--steps", type=int, default=600)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--ctx", type=int, default=128)
p.add_argument("--dim", type=int, default=256)
p.add_argument("--layers", type=int, default=4)
p.add_argument("--heads", type=int, default=4)
p.add_argument("--eval-every", type=int, default=100)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.set_flush_denormal(True)  # as trainer does: subnormals cost 100x on x86
torch.manual_seed(a.seed)
rng = random.Random(a.seed)
data = open(a.text, "rb").read()
n = len(data)
train = torch.tensor(list(data[: n - n // 10]), dtype=torch.long)
val = torch.tensor(list(data[n - n // 10 :]), dtype=torch.long)
T, C = a.ctx, a.dim


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.fc, self.fcproj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        B = x.shape[0]
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, a.heads, C // a.heads).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // a.heads)
        att = att.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.proj(y)
        return x + self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(256, C), nn.Embedding(T, C)
        self.blocks = nn.ModuleList(Block() for _ in range(a.layers))
        self.lnf = nn.LayerNorm(C)
        for name, prm in self.named_parameters():  # GPT-2's init, as trainer's
            if prm.dim() == 2:
                std = 0.02 / math.sqrt(2 * a.layers) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(prm, 0.0, std)
            elif "ln" not in name or name.endswith("bias"):
                nn.init.zeros_(prm)

    def forward(self, x):
        h = self.wte(x) + self.wpe(torch.arange(T))
        for b in self.blocks:
            h = b(h)
        return self.lnf(h) @ self.wte.weight.t()


model = GPT()
decay = [p for p in model.parameters() if p.dim() == 2]
rest = [p for p in model.parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                        lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
print(f"reference gpt-kjv: {sum(p.numel() for p in model.parameters())} parameters, torch "
      f"{torch.__version__}, {torch.get_num_threads()} torch thread(s), OPENBLAS_NUM_THREADS="
      f"{os.environ.get('OPENBLAS_NUM_THREADS', '-')}", flush=True)


def lr_at(step, warmup=100, lo_frac=0.1):
    t = step + 1
    if t <= warmup:
        return 1e-3 * t / warmup
    prog = min(1.0, (t - warmup) / (a.steps - warmup))
    return 1e-4 + 0.5 * (1 + math.cos(math.pi * prog)) * (1e-3 - 1e-4)


vrng = random.Random(12345)
val_off = [vrng.randrange(len(val) - T) for _ in range(64)]


def evaluate():
    with torch.no_grad():
        x = torch.stack([val[o : o + T] for o in val_off])
        y = torch.stack([val[o + 1 : o + T + 1] for o in val_off])
        return F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1)).item()


t = 0.0
for step in range(a.steps):
    t0 = time.perf_counter()
    offs = [rng.randrange(len(train) - T) for _ in range(a.batch)]
    x = torch.stack([train[o : o + T] for o in offs])
    y = torch.stack([train[o + 1 : o + T + 1] for o in offs])
    for g in opt.param_groups:
        g["lr"] = lr_at(step)
    loss = F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    t += time.perf_counter() - t0
    if a.eval_every and (step + 1) % a.eval_every == 0 and step + 1 < a.steps:
        print(f"eval step {step + 1}: validation loss {evaluate():.4f} nats/byte", flush=True)
v = evaluate()
print(f"final: step {a.steps}, validation loss {v:.4f} nats/byte ({v / math.log(2):.4f} bits/byte) "
      f"over 64 windows of {T} bytes, train {a.steps * a.batch * T / t:.0f} tokens/s ({t:.1f} s training)",
      flush=True)
