#!/usr/bin/env python3
"""PyTorch reference of the default VAE (jobs/vae.conf) for a side-by-side
run: 784-512-256-(32)-256-512-784 MLPs with ReLU, Bernoulli likelihood
(binary cross-entropy with logits, summed over pixels), KL to N(0, I), batch
128, Adam lr 1e-3, the Fashion-MNIST IDX files Debian installs.

  OPENBLAS_NUM_THREADS=2 /usr/bin/python3 jobs/reference/vae.py --steps 300 [--epochs 10]

Prints samples/s over the training steps and the test negative ELBO (one
eps draw per image), as `trainer train --config jobs/vae.conf` does."""
import argparse, gzip, math, os, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--idx", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--steps", type=int, default=0, help="0: --epochs")
p.add_argument("--epochs", type=float, default=10)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.set_flush_denormal(True)  # as trainer does: subnormals cost 100x on x86
torch.manual_seed(a.seed)


def idx(name):
    raw = gzip.open(os.path.join(a.idx, name + ".gz")).read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


train = torch.tensor(idx("train-images-idx3-ubyte").reshape(-1, 784), dtype=torch.float32) / 255
test = torch.tensor(idx("t10k-images-idx3-ubyte").reshape(-1, 784), dtype=torch.float32) / 255


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU())
        self.mu, self.logvar = nn.Linear(256, 32), nn.Linear(256, 32)
        self.dec = nn.Sequential(nn.Linear(32, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(),
                                 nn.Linear(512, 784))

    def loss(self, x):  # summed over the batch, nats
        h = self.enc(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        recon = F.binary_cross_entropy_with_logits(self.dec(z), x, reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu * mu - logvar.exp())
        return recon + kl


model = VAE()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
n = train.shape[0]
steps = a.steps or math.ceil(a.epochs * n / a.batch)
print(f"reference vae: {sum(p.numel() for p in model.parameters())} parameters, torch "
      f"{torch.__version__}, {torch.get_num_threads()} torch thread(s), OPENBLAS_NUM_THREADS="
      f"{os.environ.get('OPENBLAS_NUM_THREADS', '-')}, OPENBLAS_CORETYPE="
      f"{os.environ.get('OPENBLAS_CORETYPE', '-')}", flush=True)
perm, at, t = torch.randperm(n), 0, 0.0
for step in range(steps):
    t0 = time.perf_counter()
    if at + a.batch > n:
        perm, at = torch.randperm(n), 0
    x = train[perm[at : at + a.batch]]
    at += a.batch
    loss = model.loss(x) / a.batch
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    t += time.perf_counter() - t0
with torch.no_grad():
    elbo = sum(model.loss(test[i : i + 1000]).item() for i in range(0, test.shape[0], 1000)) / test.shape[0]
print(f"final: step {steps}, test negative ELBO {elbo:.4f} nats/image over {test.shape[0]} images, "
      f"train {steps * a.batch / t:.0f} samples/s ({t:.1f} s training)", flush=True)
