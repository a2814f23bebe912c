"""One pipeline stage on one rank: units with flat handles, layer-wise forward/backward (the hook points of Mist's
runtime made explicit: gather/swap-in before a unit, release after it, gradient reduction after each unit's
backward), checkpointing, and the 1F1B schedule with point-to-point send/recv, optionally with a split backward:
input gradients first, sent upstream, then the weight gradients of the layers that are not fully recomputed."""
import time

import torch

from . import comm
from .memory import Activations, storage_nbytes, storage_ptr
from .model import Ctx, build_units, weight_grads
from .zero import Handle


# the plan's partial recomputation modes (Ckpt mode, or `others` beside a count of recomputed layers)
PARTIAL = ("selective", "norms", "pointwise")


def _rng_state(device):
    """The RNG state a unit's dropout draws from: the CPU generator, plus the device's on CUDA."""
    return (torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None)


def _set_rng_state(device, state):
    cpu, dev = state
    torch.set_rng_state(cpu)
    if dev is not None:
        torch.cuda.set_rng_state(dev, device)


class Stage:
    def __init__(self, plan, layout, coords, groups, dims, seed, device, pool):
        s_idx, dp_rank, tp_rank = coords
        st = plan["stages"][s_idx]
        self.plan, self.layout, self.s, self.dp_rank, self.tp_rank = plan, layout, s_idx, dp_rank, tp_rank
        self.first, self.last = s_idx == 0, s_idx == layout.pp - 1
        self.dims, self.device, self.pool = dims, device, pool
        self.tpg, self.dpg, self.tieg = groups["tp"], groups["dp"], groups.get("tie")
        self.micro, self.G = st["microBatch"], plan["gradAccum"]
        self.ctx = Ctx(dims, self.tpg, tp_rank, device)
        self.ctx.dropout = float((plan.get("workload") or {}).get("dropout") or 0.0)
        ck = st.get("ckpt") or {"mode": "none"}
        # partial recomputation of the layers not fully recomputed: selective (attention core), norms, or pointwise
        # (norms and activation function); this runtime has no flash kernel, so norms and pointwise recompute the
        # core as well
        partial = ck.get("mode") if ck.get("mode") in PARTIAL else ck.get("others") if ck.get("mode") == "layers" else None
        self.ctx.selective = partial in PARTIAL
        self.ctx.recompute_norms = partial in ("norms", "pointwise")
        self.ctx.recompute_act = partial == "pointwise"
        self.units = build_units(st["layers"][0], st["layers"][1], self.first, self.last, self.ctx, seed)
        blocks = [u for u in self.units if u.kind == "block"]
        if ck.get("mode") == "full":
            n_ck = len(blocks)
        elif ck.get("mode") == "layers":
            n_ck = min(int(ck.get("count", 0)), len(blocks))
        else:
            n_ck = 0
        for i, u in enumerate(blocks):
            u.ckpt = i >= len(blocks) - n_ck  # the LAST c layers of the stage are recomputed
        # split backward: the blocks that are not recomputed defer their weight gradients to the weight pass
        split = bool(st.get("splitBackward", False))
        for u in self.units:
            u.split = split and u.kind == "block" and not u.ckpt
        self.pending = []  # (unit, queue, grad bytes, held bytes) of the last backward, for weight_pass
        off = st.get("offload") or {}
        for u in blocks:
            u.act_offload = float(off.get("activations", 0) or 0)
        zero_blocks = int(st.get("zero", 0))
        zero_pp = int((plan.get("prePost") or {}).get("zero", zero_blocks))
        self.acts = Activations(pool, device)
        self.handles = []
        for u in self.units:
            u.handles = []
            for gi, names in enumerate(u.groups):
                params = [u.p(n) for n in names]
                h = Handle("%s/%d" % (u.key, gi), params, [u.specs[n] for n in names], self.dpg,
                           zero_blocks if u.kind == "block" else zero_pp, off, device, pool)
                h.names = names
                u.handles.append(h)
                self.handles.append(h)
            for b in u.buffers():
                self.acts.static_ptrs.add(storage_ptr(b))
        self.tied = None
        if dims.tied:
            pre = next((u for u in self.units if u.kind == "pre"), None)
            post = next((u for u in self.units if u.kind == "post"), None)
            self.tied = (pre.handles[0] if pre else None, post.handles[1] if post else None)
        self.fwd_s = self.bwd_s = 0.0
        self.loss_sum = 0.0
        self.scale = 1.0 / (plan["globalBatch"] * plan["seqLen"])
        self.stash = {}
        self.rng = {}  # (micro-batch, unit index) -> RNG state before a checkpointed unit's forward
        self.shape = (self.micro, plan["seqLen"], dims.hidden)

    # ---- unit-level helpers ----
    def _enter(self, u):
        for h in u.handles:
            h.materialize()
        ptrs = {storage_ptr(h.flat) for h in u.handles}
        self.acts.param_ptrs = lambda: ptrs

    def _leave(self, u):
        for h in u.handles:
            h.release()

    def forward_mb(self, mb, x, tokens):
        t0 = time.perf_counter()
        if self.last:
            self.ctx.targets = tokens[:, 1:].to(self.device)
        saved = []
        for i, u in enumerate(self.units):
            self._enter(u)
            if u.kind == "pre":
                x_in = tokens[:, :-1].to(self.device)
            else:
                x_in = x.detach().requires_grad_(True)
                self.acts.note(mb, x_in)
            queue = [] if u.split else None
            self.ctx.defer = queue
            with self.acts.hooks(mb, u.act_offload):
                if u.ckpt:
                    # keep the RNG state so the recomputation in backward draws the same dropout masks
                    self.rng[(mb, i)] = _rng_state(self.device)
                    with torch.no_grad():
                        y = u(x_in)
                else:
                    y = u(x_in)
            self.ctx.defer = None
            self._leave(u)
            saved.append((x_in, y, queue))
            x = y
        if not self.last:
            self.acts.note(mb, x)
        else:
            self.loss_sum += float(x.detach())
            saved[-1] = (saved[-1][0], x, saved[-1][2])
        self.stash[mb] = (saved, self.ctx.targets)
        self.fwd_s += time.perf_counter() - t0
        return x

    def backward_mb(self, mb, gy):
        t0 = time.perf_counter()
        saved, targets = self.stash.pop(mb)
        self.ctx.targets = targets
        if self.last:
            gy = torch.tensor(self.scale, dtype=torch.float32, device=self.device)
        for i in range(len(self.units) - 1, -1, -1):
            u = self.units[i]
            x_in, y, queue = saved[i]
            self._enter(u)
            tmp = (mb, "bwd", i)
            nbytes = sum(h.Npad * 4 for h in u.handles)
            self.pool.add("grads", nbytes)  # this micro-batch's full gradients of the unit, until reduced
            with self.acts.hooks(tmp, u.act_offload):
                if u.ckpt:
                    now = _rng_state(self.device)
                    _set_rng_state(self.device, self.rng.pop((mb, i)))
                    with torch.enable_grad():
                        y = u(x_in)
                    _set_rng_state(self.device, now)
                torch.autograd.backward(y, gy)
            gy = x_in.grad if u.kind != "pre" else None
            self.acts.release(tmp)
            self._leave(u)
            saved[i] = None
            if queue is not None:
                # the weight pass takes this unit's gradients; until then the queue holds its linears' inputs
                # and output gradients
                held = sum(storage_nbytes(t) for e in queue for t in e[:2])
                self.pool.add("activations", held)
                self.pending.append((u, queue, nbytes, held))
                continue
            for h in u.handles:
                h.take_grads()
            self.pool.sub("grads", nbytes)
        self.acts.release(mb)
        self.bwd_s += time.perf_counter() - t0
        return gy

    def weight_pass(self):
        """The deferred weight gradients of the last backward (split backward), after its input gradient left."""
        if not self.pending:
            return
        t0 = time.perf_counter()
        for u, queue, nbytes, held in self.pending:
            weight_grads(queue)
            for h in u.handles:
                h.take_grads()
            self.pool.sub("grads", nbytes)
            self.pool.sub("activations", held)
        self.pending = []
        self.bwd_s += time.perf_counter() - t0

    # ---- pipeline ----
    def peer(self, ds):
        return self.layout.rank_of[(self.s + ds, self.dp_rank, self.tp_rank)]

    def run_iteration(self, get_tokens):
        """Megatron's non-interleaved 1F1B: warm-up S-s-1 forwards, steady 1F1B, cool-down backwards. With a split
        backward the weight pass runs after each backward's input gradient is posted, while it is in flight."""
        S, G = self.layout.pp, self.G
        warm = min(S - self.s - 1, G)
        rem = G - warm
        f_i = b_i = 0
        self.fwd_s = self.bwd_s = 0.0
        self.loss_sum = 0.0

        def buf():
            return torch.empty(self.shape, dtype=torch.float32, device=self.device)

        def recv_fwd():
            if self.first:
                return None
            b = buf()
            comm.p2p([], [(b, self.peer(-1))])
            return b

        def fwd(x):
            nonlocal f_i
            toks = get_tokens(f_i) if (self.first or self.last) else None
            y = self.forward_mb(f_i, x, toks)
            f_i += 1
            return y

        def bwd(g):
            nonlocal b_i
            gx = self.backward_mb(b_i, g)
            b_i += 1
            return gx

        def send_back(gx, recvs):
            """Post gx upstream (and `recvs`), run a split backward's weight pass while they are in flight, wait."""
            reqs = comm.p2p_start([] if self.first else [(gx, self.peer(-1))], recvs)
            self.weight_pass()
            comm.p2p_wait(reqs)

        for _ in range(warm):
            y = fwd(recv_fwd())
            if not self.last:
                comm.p2p([(y.detach(), self.peer(1))], [])
        x = recv_fwd() if rem > 0 else None
        for i in range(rem):
            y = fwd(x)
            if self.last:
                gy = None
            else:
                gy = buf()
                comm.p2p([(y.detach(), self.peer(1))], [(gy, self.peer(1))])
            gx = bwd(gy)
            x = None if self.first or i == rem - 1 else buf()
            send_back(gx, [] if x is None else [(x, self.peer(-1))])
        for _ in range(warm):
            gy = buf()
            comm.p2p([], [(gy, self.peer(1))])
            send_back(bwd(gy), [])

    def optimizer_step(self, adam, t):
        for h in self.handles:
            h.reduce_grads()
        a, b = self.tied if self.tied is not None else (None, None)
        if a is not None or b is not None:
            if a is not None and b is not None:  # both copies on this rank (pp = 1)
                s = a.gacc.full() + b.gacc.full()
                a.gacc.assign(s)
                b.gacc.assign(s)
            else:
                h = a or b
                g = h.gacc.full()
                comm.all_reduce(g, self.tieg)
                h.gacc.assign(g)
        for h in self.handles:
            h.step(adam, t)
