#!/usr/bin/env python3
"""PyTorch reference of lstm-kjv (jobs/lstm-kjv.conf), for a side-by-side
comparison on the same machine: the same shapes, data, optimizer, schedule,
clipping and evaluation as `trainer train --config jobs/lstm-kjv.conf`.

  python3 jobs/reference/lstm_kjv.py [--steps 600] [--threads 1]

Debian's python3-torch (CPU, OpenBLAS underneath). Its best setting on this
kind of machine is torch.set_num_threads(1) with OPENBLAS_NUM_THREADS set to
the cores (jobs/bench.sh sets it); run it with the same OPENBLAS_CORETYPE as
trainer so that both use the same BLAS kernel. Prints the validation loss
every 100 steps, the final one, and tokens/s over the training steps (the
evaluations left out)."""
import argparse, math, os, random, time

import torch
import torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument("--text", default="data/kjv.txt")
p.add_argument("--steps", type=int, default=600)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--ctx", type=int, default=128)
p.add_argument("--embed", type=int, default=128)
p.add_argument("--dim", type=int, default=512)
p.add_argument("--layers", type=int, default=2)
p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--warmup", type=int, default=50)
p.add_argument("--min-lr-frac", type=float, default=0.1)
p.add_argument("--clip", type=float, default=1.0)
p.add_argument("--eval-every", type=int, default=100)
p.add_argument("--val-windows", type=int, default=64)
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
T = a.ctx


class LSTMLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(256, a.embed)
        self.lstm = nn.LSTM(a.embed, a.dim, num_layers=a.layers, batch_first=True)
        self.out = nn.Linear(a.dim, 256)
        H = a.dim
        with torch.no_grad():  # forget gates open, as trainer initialises them
            for l in range(a.layers):
                getattr(self.lstm, f"bias_ih_l{l}")[H : 2 * H].fill_(1.0)
                getattr(self.lstm, f"bias_hh_l{l}")[H : 2 * H].fill_(0.0)

    def forward(self, x):
        h, _ = self.lstm(self.wte(x))
        return self.out(h)


model = LSTMLM()
print(f"reference lstm-kjv: {sum(p.numel() for p in model.parameters())} parameters, "
      f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), "
      f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '-')}, "
      f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '-')}", flush=True)
opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
lossf = nn.CrossEntropyLoss()


def lr_at(step):  # the same schedule as trainer's schedule.c
    t = step + 1
    if a.warmup > 0 and t <= a.warmup:
        return a.lr * t / a.warmup
    span = a.steps - a.warmup
    prog = min(1.0, (t - a.warmup) / span) if span > 0 else 1.0
    lo = a.lr * a.min_lr_frac
    return lo + 0.5 * (1 + math.cos(math.pi * prog)) * (a.lr - lo)


vrng = random.Random(12345)
val_offsets = [vrng.randrange(len(val) - T) for _ in range(a.val_windows)]


def evaluate():
    model.eval()
    with torch.no_grad():
        x = torch.stack([val[o : o + T] for o in val_offsets])
        y = torch.stack([val[o + 1 : o + T + 1] for o in val_offsets])
        loss = lossf(model(x).reshape(-1, 256), y.reshape(-1)).item()
    model.train()
    return loss


train_time = 0.0
for step in range(a.steps):
    t0 = time.perf_counter()
    offs = [rng.randrange(len(train) - T) for _ in range(a.batch)]
    x = torch.stack([train[o : o + T] for o in offs])
    y = torch.stack([train[o + 1 : o + T + 1] for o in offs])
    for g in opt.param_groups:
        g["lr"] = lr_at(step)
    loss = lossf(model(x).reshape(-1, 256), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), a.clip)
    opt.step()
    train_time += time.perf_counter() - t0
    done = step + 1
    if done % 25 == 0:
        print(f"step {done:5d}/{a.steps} | loss {loss.item():.4f} nats/byte | "
              f"{done * a.batch * T / train_time:8.0f} tokens/s", flush=True)
    if a.eval_every and done % a.eval_every == 0 and done < a.steps:
        v = evaluate()
        print(f"eval step {done}: validation loss {v:.4f} nats/byte ({v / math.log(2):.4f} bits/byte)", flush=True)
v = evaluate()
print(f"final: step {a.steps}, validation loss {v:.4f} nats/byte ({v / math.log(2):.4f} bits/byte) "
      f"over {a.val_windows} windows of {T} bytes, train {a.steps * a.batch * T / train_time:.0f} tokens/s "
      f"({train_time:.1f} s training)", flush=True)
