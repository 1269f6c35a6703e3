#!/usr/bin/env python3
"""PyTorch reference of the Glow of jobs/glow.conf for a side-by-side run,
the same shapes and the same recipe as trainer's glow model:

  pixels k -> v = (k + u) / 256, u ~ U[0, 1) -> y = logit(0.05 + 0.9 v)
  (log-determinant counted) -> 2 levels of: squeeze, K = 8 steps of
  [actnorm (set from the first batch), invertible 1x1 convolution in LU
  form (fixed permutation and signs), affine coupling (conv3x3 -> ReLU ->
  conv1x1 -> ReLU -> zero conv3x3, width 64; shift = first half of the
  output, scale = sigmoid(second half + 2))], then a split with a Gaussian
  prior from a zero conv3x3 of the kept half; a learned Gaussian (a mean and
  a log scale per value) on the last level's output. Loss: -log p(x) of the
  discrete image in nats, reported in bits per dimension. Adam lr 1e-3 with
  a 200-step linear warmup, gradient norm clipped at 50, batch 64.

  OPENBLAS_NUM_THREADS=2 /usr/bin/python3 jobs/reference/glow.py --steps 100 [--epochs 1]

Prints images (samples) per second over the training steps and the test bits/dim (one
dequantization draw per image), as `trainer train --config jobs/glow.conf`
does. Channels-first here (PyTorch's layout), the same function."""
import argparse, gzip, math, os, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--idx", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--steps", type=int, default=0, help="0: --epochs")
p.add_argument("--epochs", type=float, default=1)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--flow-steps", type=int, default=8)
p.add_argument("--width", type=int, default=64)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--warmup", type=int, default=200)
p.add_argument("--grad-clip", type=float, default=50.0)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--seed", type=int, default=1)
p.add_argument("--eval", type=int, default=10000, help="test images to score")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.set_flush_denormal(True)  # as trainer does: subnormals cost 100x on x86
torch.manual_seed(a.seed)
ALPHA = 0.05


def idx(name):
    raw = gzip.open(os.path.join(a.idx, name + ".gz")).read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


train = torch.tensor(idx("train-images-idx3-ubyte"), dtype=torch.float32).unsqueeze(1)
test = torch.tensor(idx("t10k-images-idx3-ubyte"), dtype=torch.float32).unsqueeze(1)


def preprocess(k):
    """Dequantized, logit; returns y and each image's log-determinant."""
    v = (k + torch.rand_like(k)) / 256
    s = ALPHA + (1 - 2 * ALPHA) * v
    y = torch.log(s) - torch.log1p(-s)
    ld = (math.log(1 - 2 * ALPHA) - torch.log(s) - torch.log1p(-s)).flatten(1).sum(1)
    return y, ld


def squeeze(x):
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 3, 5, 1, 2, 4)
    return x.reshape(b, 4 * c, h // 2, w // 2)


class ActNorm(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.ready = False

    def forward(self, x):
        if not self.ready:  # the first batch sets zero mean, unit variance
            with torch.no_grad():
                mean = x.mean((0, 2, 3), keepdim=True)
                std = x.std((0, 2, 3), keepdim=True, unbiased=False)
                self.bias.copy_(-mean)
                self.logs.copy_(-torch.log(std + 1e-6))
            self.ready = True
        return (x + self.bias) * torch.exp(self.logs), x.shape[2] * x.shape[3] * self.logs.sum()


class InvConv(nn.Module):
    def __init__(self, c):
        super().__init__()
        q = torch.linalg.qr(torch.randn(c, c))[0]
        pm, l, u = torch.linalg.lu(q)
        d = torch.diagonal(u)
        self.register_buffer("perm", pm)
        self.register_buffer("sign", torch.sign(d))
        self.register_buffer("lmask", torch.tril(torch.ones(c, c), -1))
        self.lower = nn.Parameter(l * self.lmask)
        self.upper = nn.Parameter(torch.triu(u, 1))
        self.logs = nn.Parameter(torch.log(torch.abs(d)))

    def forward(self, x):
        c = x.shape[1]
        eye = torch.eye(c)
        w = self.perm @ (self.lower * self.lmask + eye) @ (
            self.upper * self.lmask.T + torch.diag(self.sign * torch.exp(self.logs)))
        return F.conv2d(x, w.view(c, c, 1, 1)), x.shape[2] * x.shape[3] * self.logs.sum()


def zero_conv(cin, cout):
    conv = nn.Conv2d(cin, cout, 3, padding=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class Coupling(nn.Module):
    def __init__(self, c, width):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(c // 2, width, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(width, width, 1), nn.ReLU(), zero_conv(width, c))

    def forward(self, x):
        xa, xb = x.chunk(2, 1)
        shift, raw = self.net(xa).chunk(2, 1)
        scale = torch.sigmoid(raw + 2)
        return torch.cat([xa, (xb + shift) * scale], 1), F.logsigmoid(raw + 2).flatten(1).sum(1)


def gauss_nll(z, mean, logs):
    e = (z - mean) * torch.exp(-logs)
    return (0.5 * e * e + logs + 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)


class Glow(nn.Module):
    def __init__(self, K, width):
        super().__init__()
        self.levels = nn.ModuleList()
        c = 1
        for level in range(2):
            c *= 4
            steps = nn.ModuleList()
            for _ in range(K):
                steps.append(nn.ModuleList([ActNorm(c), InvConv(c), Coupling(c, width)]))
            self.levels.append(steps)
            if level == 0:
                self.prior = zero_conv(c // 2, c)
                c //= 2
        self.top_mean = nn.Parameter(torch.zeros(1, c, 7, 7))
        self.top_logs = nn.Parameter(torch.zeros(1, c, 7, 7))

    def nll(self, k):  # nats per image, as a discrete image
        y, ld = preprocess(k)
        x, nll = y, 0.0
        for level, steps in enumerate(self.levels):
            x = squeeze(x)
            for an, ic, cp in steps:
                x, l1 = an(x)
                x, l2 = ic(x)
                x, l3 = cp(x)
                ld = ld + l1 + l2 + l3
            if level == 0:
                x, z = x.chunk(2, 1)
                mean, logs = self.prior(x).chunk(2, 1)
                nll = nll + gauss_nll(z, mean, logs)
        nll = nll + gauss_nll(x, self.top_mean, self.top_logs)
        return nll - ld + 784 * math.log(256)


model = Glow(a.flow_steps, a.width)
n = train.shape[0]
perm, at = torch.randperm(n), 0
with torch.no_grad():  # actnorm from the first batch
    model.nll(train[perm[: a.batch]])
params = sum(p.numel() for p in model.parameters())
opt = torch.optim.Adam(model.parameters(), lr=a.lr)
steps = a.steps or math.ceil(a.epochs * n / a.batch)
bpd = 784 * math.log(2)
print(f"reference glow: {params} parameters, torch {torch.__version__}, "
      f"{torch.get_num_threads()} torch thread(s), OPENBLAS_NUM_THREADS="
      f"{os.environ.get('OPENBLAS_NUM_THREADS', '-')}, OPENBLAS_CORETYPE="
      f"{os.environ.get('OPENBLAS_CORETYPE', '-')}, mkldnn "
      f"{torch.backends.mkldnn.is_available()}", flush=True)
t, window = 0.0, 0.0
for step in range(steps):
    t0 = time.perf_counter()
    if at + a.batch > n:
        perm, at = torch.randperm(n), 0
    x = train[perm[at : at + a.batch]]
    at += a.batch
    for g in opt.param_groups:
        g["lr"] = a.lr * min(1.0, (step + 1) / a.warmup) if a.warmup else a.lr
    loss = model.nll(x).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
    opt.step()
    t += time.perf_counter() - t0
    window += loss.item()
    if (step + 1) % 100 == 0:
        print(f"step {step + 1}/{steps} | loss {window / 100 / bpd:.4f} bits/dim | "
              f"{(step + 1) * a.batch / t:.0f} samples/s", flush=True)
        window = 0.0
with torch.no_grad():
    m = min(a.eval, test.shape[0])
    nats = sum(model.nll(test[i : min(i + 500, m)]).sum().item() for i in range(0, m, 500)) / m
print(f"final: step {steps}, test {nats / bpd:.4f} bits/dim over {m} images, "
      f"train {steps * a.batch / t:.0f} samples/s ({t:.1f} s training)", flush=True)
