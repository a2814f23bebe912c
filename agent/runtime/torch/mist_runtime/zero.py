"""Flat parameter handles: data parallelism with ZeRO 0-3 and offloading of weights, gradients and optimizer
states by ratio.

Each handle flattens a group of a unit's (TP-local) parameters into one fp32 buffer of Npad elements (N rounded
up to a multiple of dp); shard i of dp is [i*n, (i+1)*n), n = Npad/dp.
  ZeRO 0: full weights, full gradients (all-reduced once per iteration), full Adam states.
  ZeRO 1: full weights and gradients; Adam states for the shard only; updated shards are all-gathered.
  ZeRO 2: as 1, but gradients are reduce-scattered after every micro-batch; only the shard is kept.
  ZeRO 3: as 2, and weights are kept only as the shard; the full buffer is gathered around each use (forward,
          and again for backward) and freed after it.
Offloading by ratio r keeps floor(L*(1-r)) elements of the persistent vector on the device and the rest in host
memory (SplitVec). Weights with r > 0 are materialised around use like ZeRO-3 (from the device and host parts).
"""
import torch

from . import comm
from .memory import SplitVec, alloc_storage, free_storage


class Adam:
    def __init__(self, lr=3e-3, b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.0):
        self.lr, self.b1, self.b2, self.eps, self.wd = lr, b1, b2, eps, weight_decay

    def update(self, p, g, m, v, t):
        """Elementwise (so sharding does not change a single bit of the result)."""
        m.mul_(self.b1).add_(g, alpha=1 - self.b1)
        v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
        bc1 = 1 - self.b1 ** t
        bc2 = 1 - self.b2 ** t
        if self.wd:
            p.mul_(1 - self.lr * self.wd)
        p.addcdiv_(m, (v / bc2).sqrt_().add_(self.eps), value=-self.lr / bc1)


class Handle:
    def __init__(self, name, params, specs, dp_group, zero, offload, device, pool):
        self.name, self.params, self.specs = name, params, specs
        self.dpg, self.zero, self.device, self.pool = dp_group, zero, device, pool
        dp = dp_group.size
        self.N = sum(p.numel() for p in params)
        self.Npad = ((self.N + dp - 1) // dp) * dp
        self.n = self.Npad // dp
        self.lo = max(dp_group.index, 0) * self.n
        self.flat = torch.zeros(self.Npad, dtype=torch.float32, device=device)
        off = 0
        self.offsets = []
        with torch.no_grad():
            for p in params:
                self.flat[off:off + p.numel()].copy_(p.data.reshape(-1))
                p.data = self.flat[off:off + p.numel()].view(p.shape)
                self.offsets.append(off)
                off += p.numel()
        self.transient = zero == 3 or offload.get("weights", 0) > 0
        self.own = (self.lo, self.lo + self.n) if zero == 3 else (0, self.Npad)
        self.opt = (self.lo, self.lo + self.n) if zero >= 1 else (0, self.Npad)
        self.grng = (self.lo, self.lo + self.n) if zero >= 2 else (0, self.Npad)
        self.live = True
        if self.transient:
            self.keep = SplitVec(self.own[1] - self.own[0], offload.get("weights", 0), device, pool, "weights")
            self.keep.assign(self.flat[self.own[0]:self.own[1]])
            self.live = False
            free_storage(self.flat)
        else:
            pool.add("weights", self.Npad * 4)
        self.gacc = SplitVec(self.grng[1] - self.grng[0], offload.get("grads", 0), device, pool, "grads")
        L = self.opt[1] - self.opt[0]
        self.m = SplitVec(L, offload.get("optimizer", 0), device, pool, "optimizer")
        self.v = SplitVec(L, offload.get("optimizer", 0), device, pool, "optimizer")

    # ---- weights around use ----
    def materialize(self):
        if self.live:
            return
        alloc_storage(self.flat, self.Npad)
        self.pool.add("weights", self.Npad * 4)
        own = self.keep.full()
        full = comm.all_gather_flat(own, self.dpg) if self.zero == 3 else own
        self.flat.data.copy_(full)
        self.live = True

    def release(self):
        if self.transient and self.live:
            free_storage(self.flat)
            self.pool.sub("weights", self.Npad * 4)
            self.live = False

    def full_weights(self):
        """The full (Npad) weight vector, on every dp rank (collective when the weights are sharded)."""
        if not self.transient:
            return self.flat.data.clone()
        own = self.keep.full()
        return comm.all_gather_flat(own, self.dpg) if self.zero == 3 else own

    def set_full_weights(self, full):
        if self.transient:
            self.keep.assign(full[self.own[0]:self.own[1]])
        else:
            self.flat.data.copy_(full)

    # ---- gradients ----
    def take_grads(self):
        """Flatten this micro-batch's gradients into the accumulator (reduce-scattered for ZeRO >= 2)."""
        g = torch.zeros(self.Npad, dtype=torch.float32, device=self.device)
        for p, off in zip(self.params, self.offsets):
            if p.grad is not None:
                g[off:off + p.numel()].copy_(p.grad.reshape(-1))
                p.grad = None
        if self.zero >= 2:
            g = comm.reduce_scatter_flat(g, self.dpg)
        self.gacc.add_(g)

    def reduce_grads(self):
        """End of iteration: all-reduce the full gradients (ZeRO 0/1); ZeRO 2/3 already reduced per micro-batch."""
        if self.zero < 2 and self.dpg.size > 1:
            g = self.gacc.full()
            comm.all_reduce(g, self.dpg)
            self.gacc.assign(g)

    # ---- optimizer ----
    def step(self, adam, t):
        pool = self.pool
        swapped = self.m.host_bytes + self.v.host_bytes + self.gacc.host_bytes + (self.keep.host_bytes if self.transient else 0)
        pool.add("optimizer", swapped)  # host parts are brought in for this handle's step only
        g = self.gacc.full()
        g = g[self.opt[0] - self.grng[0]:self.opt[1] - self.grng[0]]
        if self.transient:
            own = self.keep.full()
            p = own[self.opt[0] - self.own[0]:self.opt[1] - self.own[0]].clone()
        else:
            p = self.flat.data[self.opt[0]:self.opt[1]].clone()
        m, v = self.m.full(), self.v.full()
        adam.update(p, g, m, v, t)
        self.m.assign(m)
        self.v.assign(v)
        if self.zero == 3:
            self.keep.assign(p)
        elif self.zero >= 1:
            self.set_full_weights(comm.all_gather_flat(p, self.dpg))
        else:
            self.set_full_weights(p)
        self.gacc.zero_()
        pool.sub("optimizer", swapped)

    # ---- checkpoint support ----
    def full_states(self):
        """(weights, exp_avg, exp_avg_sq) as full Npad vectors on every dp rank."""
        w = self.full_weights()
        m, v = self.m.full(), self.v.full()
        if self.zero >= 1:
            m, v = comm.all_gather_flat(m, self.dpg), comm.all_gather_flat(v, self.dpg)
        return w, m, v

    def load_states(self, w, m, v):
        self.set_full_weights(w)
        self.m.assign(m[self.opt[0]:self.opt[1]])
        self.v.assign(v[self.opt[0]:self.opt[1]])

    def split(self, flat):
        """Per-parameter views of a full flat vector."""
        return [flat[off:off + p.numel()].view(p.shape) for p, off in zip(self.params, self.offsets)]
