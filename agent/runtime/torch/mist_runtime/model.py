"""GPT (learned positions, LayerNorm, GeLU MLP, biases) and LLaMA-style (RoPE, RMSNorm, SwiGLU, GQA) decoders,
built per pipeline stage as a list of units: [pre (embedding)] + blocks + [post (final norm, head, loss)].

Every full weight is initialised from (seed, parameter name) in float32 on the CPU, independent of the plan, and
then sliced for tensor parallelism (Megatron column/row-parallel linears, vocab-parallel embedding and loss), so
any plan starts from the same model. The vocabulary is padded to a multiple of VOCAB_PAD (independent of tp);
padded logits are masked out of the loss, so the padded model computes exactly the unpadded one.
"""
import math
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as tckpt

from . import comm

VOCAB_PAD = 128


def padded_vocab(vocab):
    return ((vocab + VOCAB_PAD - 1) // VOCAB_PAD) * VOCAB_PAD


class PSpec:
    """A parameter: global name, full shape, TP split dim (None = replicated), init kind."""

    def __init__(self, name, shape, split, init, std=0.02, vocab_rows=False):
        self.name, self.shape, self.split, self.init, self.std, self.vocab_rows = name, tuple(shape), split, init, std, vocab_rows


def full_init(spec, seed, seed_name=None):
    if spec.init == "ones":
        return torch.ones(spec.shape, dtype=torch.float32)
    if spec.init == "zeros":
        return torch.zeros(spec.shape, dtype=torch.float32)
    key = (seed * 1000003 + zlib.crc32((seed_name or spec.name).encode())) % (2 ** 62)
    g = torch.Generator().manual_seed(key)
    return torch.randn(spec.shape, generator=g, dtype=torch.float32) * spec.std


def tp_slice(full, spec, tp, tp_rank):
    if spec.split is None or tp == 1:
        return full.clone()
    return full.chunk(tp, dim=spec.split)[tp_rank].clone()


class Dims:
    def __init__(self, model, seq_len):
        self.arch = model["arch"]
        self.llama = self.arch in ("llama", "lvm")
        self.layers = model["layers"]
        self.hidden = model["hidden"]
        self.heads = model["heads"]
        self.kv = model.get("kvHeads", self.heads) if self.llama else self.heads
        self.ffn = model.get("ffnHidden") or (4 * self.hidden)
        self.vocab = model["vocab"]
        self.vpad = padded_vocab(self.vocab)
        self.seq = seq_len
        self.max_pos = max(model.get("seqLen", seq_len), seq_len)
        self.tied = bool(model.get("tiedEmbeddings", False))
        self.hd = self.hidden // self.heads


class Ctx:
    """What a unit needs besides its input: tp group and rank, dims, targets of the micro-batch."""

    def __init__(self, dims, tp_group, tp_rank, device):
        self.d, self.tpg, self.tp_rank, self.device = dims, tp_group, tp_rank, device
        self.tp = tp_group.size
        self.targets = None
        self.selective = False
        # "norms" / "pointwise" checkpointing: norm outputs (and with pointwise the activation function's output)
        # are recomputed in backward, not stored
        self.recompute_norms = False
        self.recompute_act = False
        # Split backward: while a unit whose weight gradients wait runs forward, the list its linears queue their
        # (input, output gradient, weight, bias) on in backward (engine.Stage.weight_pass); None otherwise.
        self.defer = None
        # Dropout probability from the plan's workload (0 by default: parity with a single process needs it off).
        # Every rank seeds the same generator and makes the same calls, so the masks on replicated activations
        # agree across a TP group.
        self.dropout = 0.0


class Unit(nn.Module):
    """A schedulable piece of a stage. `specs` lists its parameters; `groups` partitions them into flat handles."""

    kind = "unit"

    def __init__(self, key, specs, groups, ctx, seed, seed_names=None):
        super().__init__()
        self.key = key
        self.specs = {s.name: s for s in specs}
        self.groups = groups
        self.ctx = ctx
        self.pnames = [s.name for s in specs]
        self._p = nn.ParameterDict()
        seed_names = seed_names or {}
        for s in specs:
            full = full_init(s, seed, seed_names.get(s.name))
            self._p[s.name.replace(".", "__")] = nn.Parameter(tp_slice(full, s, ctx.tp, ctx.tp_rank).to(ctx.device))
        self.ckpt = False  # whole-unit recompute
        self.act_offload = 0.0

    def p(self, name):
        return self._p[name.replace(".", "__")]


def _rms(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def _swiglu(g, u):
    return F.silu(g) * u


def _rope(x, cos, sin):
    d = x.shape[-1] // 2
    x1, x2 = x[..., :d], x[..., d:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def _attn_core(q, k, v, dropout=0.0):
    """q: [b, h, s, d]; k, v: [b, h, s, d] (kv already expanded); causal softmax attention.

    `dropout` applies to the attention probabilities (the plan's workload.dropout while training; 0 by default).
    Checkpointed recomputation replays the same masks because torch.utils.checkpoint restores the RNG state."""
    s = q.shape[2]
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    mask = torch.ones(s, s, dtype=torch.bool, device=q.device).triu(1)
    scores = scores.masked_fill(mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    if dropout > 0:
        probs = F.dropout(probs, dropout, training=True)
    return torch.matmul(probs, v)


def _linear_param_grads(x, g, has_b):
    """The weight and bias gradients of y = linear(x, w, b) from its input x and output gradient g."""
    x2 = x.reshape(-1, x.shape[-1])
    g2 = g.reshape(-1, g.shape[-1])
    return g2.t().matmul(x2), (g2.sum(0) if has_b else None)


def weight_grads(queue):
    """The weight pass of a split backward: each queued linear's weight (and bias) gradient, accumulated into .grad
    as autograd would have."""
    for x, g, w, b in queue:
        gw, gb = _linear_param_grads(x, g, b is not None)
        w.grad = gw if w.grad is None else w.grad + gw
        if b is not None:
            b.grad = gb if b.grad is None else b.grad + gb
    queue.clear()


class _SplitLinear(torch.autograd.Function):
    """linear(x, w, b) whose backward computes only the input gradient and queues what the weight gradient needs
    (split backward: the stage sends its input gradient before computing weight gradients)."""

    @staticmethod
    def forward(ctx, x, w, b, queue):
        ctx.save_for_backward(x)
        # the parameters themselves (not saved-tensor copies): the weight pass sets their .grad
        ctx.w, ctx.b, ctx.queue = w, b, queue
        return F.linear(x, w, b)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        ctx.queue.append((x.detach(), g.detach(), ctx.w, ctx.b))
        return g.matmul(ctx.w), None, None, None


def linear(ctx, x, w, b=None):
    """F.linear, or a split linear (_SplitLinear) while ctx.defer holds a queue and autograd records."""
    if ctx.defer is None or not torch.is_grad_enabled():
        return F.linear(x, w, b)
    return _SplitLinear.apply(x, w, b, ctx.defer)


class _PointwiseThenLinears(torch.autograd.Function):
    """outs[i] = linear(f(*xs), ws[i], bs[i]), saving xs and the weights but not f's output: f (a norm or an
    activation function, memory-bound and cheap) is recomputed in backward. This is the plan's "norms" and
    "pointwise" checkpointing: the norm outputs (and the activation function's output) are never stored.

    `group` (a TP group or None) makes the linears column-parallel: their input gradient is all-reduced over the
    group before it flows back through f, as comm.copy_to_tp would do between f and the linears. With a `queue`
    (split backward) the weight gradients are queued for the weight pass instead of computed."""

    @staticmethod
    def forward(ctx, f, n_in, group, queue, *args):
        xs, rest = args[:n_in], args[n_in:]
        k = len(rest) // 2
        ws, bs = rest[:k], rest[k:]
        with torch.no_grad():
            y = f(*xs)
        outs = tuple(F.linear(y, w, b) for w, b in zip(ws, bs))
        ctx.f, ctx.n_in, ctx.group, ctx.k, ctx.queue = f, n_in, group, k, queue
        ctx.has_b = tuple(b is not None for b in bs)
        ctx.ws, ctx.bs = ws, bs  # the parameters themselves, for a queued weight pass
        ctx.save_for_backward(*xs, *ws)
        return outs if k > 1 else outs[0]

    @staticmethod
    def backward(ctx, *gouts):
        saved = ctx.saved_tensors
        xs, ws = saved[:ctx.n_in], saved[ctx.n_in:]
        with torch.enable_grad():
            xs_ = [x.detach().requires_grad_(x.requires_grad) for x in xs]
            y = ctx.f(*xs_)
        y2 = y.detach().reshape(-1, y.shape[-1])
        gy = None
        gws, gbs = [], []
        for j, (g, w, has_b) in enumerate(zip(gouts, ws, ctx.has_b)):
            if ctx.queue is not None:
                ctx.queue.append((y2, g.detach(), ctx.ws[j], ctx.bs[j]))
                gw, gb = None, None
            else:
                gw, gb = _linear_param_grads(y2, g, has_b)
            gws.append(gw if w.requires_grad else None)
            gbs.append(gb)
            gi = g.matmul(w)
            gy = gi if gy is None else gy + gi
        if ctx.group is not None and ctx.group.size > 1:
            gy = comm.all_reduce(gy.contiguous().clone(), ctx.group)
        need = [x for x in xs_ if x.requires_grad]
        got = iter(torch.autograd.grad(y, need, gy) if need else [])
        gxs = [next(got) if x.requires_grad else None for x in xs_]
        return (None, None, None, None, *gxs, *gws, *gbs)


def pointwise_then_linears(f, xs, ws, bs, group=None, queue=None):
    """linear(f(*xs), w, b) for each (w, b), without storing f's output (see _PointwiseThenLinears)."""
    return _PointwiseThenLinears.apply(f, len(xs), group, queue, *xs, *ws, *bs)


class Pre(Unit):
    kind = "pre"

    def __init__(self, ctx, seed):
        d = ctx.d
        specs = [PSpec("embed.weight", (d.vpad, d.hidden), 0, "normal", vocab_rows=True)]
        groups = [["embed.weight"]]
        if not d.llama:
            specs.append(PSpec("pos.weight", (d.max_pos, d.hidden), None, "normal", std=0.01))
            groups.append(["pos.weight"])
        super().__init__("pre", specs, groups, ctx, seed)
        vl = d.vpad // ctx.tp
        self.vstart = ctx.tp_rank * vl

    def forward(self, ids):
        c = self.ctx
        w = self.p("embed.weight")
        if c.tp > 1:
            local = ids - self.vstart
            inside = (local >= 0) & (local < w.shape[0])
            x = F.embedding(local.clamp(0, w.shape[0] - 1), w) * inside.unsqueeze(-1).to(w.dtype)
            x = comm.reduce_from_tp(x, c.tpg)
        else:
            x = F.embedding(ids, w)
        if not c.d.llama:
            x = x + self.p("pos.weight")[: ids.shape[1]].unsqueeze(0)
        return x


class Block(Unit):
    kind = "block"

    def __init__(self, index, ctx, seed):
        d = ctx.d
        n = "layers.%d." % index
        out_std = 0.02 / math.sqrt(2 * d.layers)
        if d.llama:
            specs = [
                PSpec(n + "norm1.weight", (d.hidden,), None, "ones"),
                PSpec(n + "attn.wq", (d.heads * d.hd, d.hidden), 0, "normal"),
                PSpec(n + "attn.wk", (d.kv * d.hd, d.hidden), 0, "normal"),
                PSpec(n + "attn.wv", (d.kv * d.hd, d.hidden), 0, "normal"),
                PSpec(n + "attn.wo", (d.hidden, d.heads * d.hd), 1, "normal", std=out_std),
                PSpec(n + "norm2.weight", (d.hidden,), None, "ones"),
                PSpec(n + "mlp.w1", (d.ffn, d.hidden), 0, "normal"),
                PSpec(n + "mlp.w3", (d.ffn, d.hidden), 0, "normal"),
                PSpec(n + "mlp.w2", (d.hidden, d.ffn), 1, "normal", std=out_std),
            ]
        else:
            specs = [
                PSpec(n + "ln1.weight", (d.hidden,), None, "ones"),
                PSpec(n + "ln1.bias", (d.hidden,), None, "zeros"),
                PSpec(n + "attn.wq", (d.hidden, d.hidden), 0, "normal"),
                PSpec(n + "attn.bq", (d.hidden,), 0, "zeros"),
                PSpec(n + "attn.wk", (d.hidden, d.hidden), 0, "normal"),
                PSpec(n + "attn.bk", (d.hidden,), 0, "zeros"),
                PSpec(n + "attn.wv", (d.hidden, d.hidden), 0, "normal"),
                PSpec(n + "attn.bv", (d.hidden,), 0, "zeros"),
                PSpec(n + "attn.wo", (d.hidden, d.hidden), 1, "normal", std=out_std),
                PSpec(n + "attn.bo", (d.hidden,), None, "zeros"),
                PSpec(n + "ln2.weight", (d.hidden,), None, "ones"),
                PSpec(n + "ln2.bias", (d.hidden,), None, "zeros"),
                PSpec(n + "mlp.fc1", (d.ffn, d.hidden), 0, "normal"),
                PSpec(n + "mlp.b1", (d.ffn,), 0, "zeros"),
                PSpec(n + "mlp.fc2", (d.hidden, d.ffn), 1, "normal", std=out_std),
                PSpec(n + "mlp.b2", (d.hidden,), None, "zeros"),
            ]
        super().__init__("layer-%05d" % index, specs, [[s.name for s in specs]], ctx, seed)
        self.index = index
        self.n = n
        if d.llama:
            inv = 1.0 / (10000.0 ** (torch.arange(0, d.hd, 2, dtype=torch.float32) / d.hd))
            f = torch.outer(torch.arange(d.max_pos, dtype=torch.float32), inv)
            self.register_buffer("cos", f.cos().to(ctx.device), persistent=False)
            self.register_buffer("sin", f.sin().to(ctx.device), persistent=False)

    def _norm(self, which):
        """(f, params) of norm 1 or 2: f(x, *params) is the normalised x."""
        d, n = self.ctx.d, self.n
        if d.llama:
            return _rms, (self.p(n + "norm%d.weight" % which),)
        return (lambda x, w, b: F.layer_norm(x, (d.hidden,), w, b)), (self.p(n + "ln%d.weight" % which), self.p(n + "ln%d.bias" % which))

    def _normed_linears(self, x, which, ws, bs):
        """The column-parallel linears fed by norm `which` of x: without pointwise checkpointing the norm output
        is stored for their backward; with it, only x is, and the norm is recomputed."""
        c = self.ctx
        f, params = self._norm(which)
        if c.recompute_norms and torch.is_grad_enabled():
            out = pointwise_then_linears(f, (x, *params), ws, bs, c.tpg, c.defer)
            return out if isinstance(out, tuple) else (out,)
        h = comm.copy_to_tp(f(x, *params), c.tpg)
        return tuple(linear(c, h, w, b) for w, b in zip(ws, bs))

    def _attention(self, x):
        c, d, n = self.ctx, self.ctx.d, self.n
        b, s, _ = x.shape
        hl, kvl = d.heads // c.tp, d.kv // c.tp
        ws = [self.p(n + "attn.w" + t) for t in "qkv"]
        bs = [None] * 3 if d.llama else [self.p(n + "attn.b" + t) for t in "qkv"]
        q, k, v = self._normed_linears(x, 1, ws, bs)
        q = q.view(b, s, hl, d.hd).transpose(1, 2)
        k = k.view(b, s, kvl, d.hd).transpose(1, 2)
        v = v.view(b, s, kvl, d.hd).transpose(1, 2)
        if d.llama:
            cos, sin = self.cos[:s], self.sin[:s]
            q, k = _rope(q, cos, sin), _rope(k, cos, sin)
            if hl != kvl:
                k = k.repeat_interleave(hl // kvl, dim=1)
                v = v.repeat_interleave(hl // kvl, dim=1)
        if c.selective and torch.is_grad_enabled():
            o = tckpt.checkpoint(_attn_core, q, k, v, self._dropout_p(), use_reentrant=True)
        else:
            o = _attn_core(q, k, v, self._dropout_p())
        o = o.transpose(1, 2).reshape(b, s, hl * d.hd)
        o = comm.reduce_from_tp(linear(c, o, self.p(n + "attn.wo")), c.tpg)
        if not d.llama:
            o = o + self.p(n + "attn.bo")
        return o

    def _mlp(self, x):
        c, d, n = self.ctx, self.ctx.d, self.n
        pointwise = c.recompute_act and torch.is_grad_enabled()
        if d.llama:
            g, u = self._normed_linears(x, 2, [self.p(n + "mlp.w1"), self.p(n + "mlp.w3")], [None, None])
            w2 = self.p(n + "mlp.w2")
            out = pointwise_then_linears(_swiglu, (g, u), (w2,), (None,), None, c.defer) if pointwise else linear(c, _swiglu(g, u), w2)
            return comm.reduce_from_tp(out, c.tpg)
        (h,) = self._normed_linears(x, 2, [self.p(n + "mlp.fc1")], [self.p(n + "mlp.b1")])
        fc2 = self.p(n + "mlp.fc2")
        out = pointwise_then_linears(F.gelu, (h,), (fc2,), (None,), None, c.defer) if pointwise else linear(c, F.gelu(h), fc2)
        return comm.reduce_from_tp(out, c.tpg) + self.p(n + "mlp.b2")

    def _dropout_p(self):
        # module.training, not torch.is_grad_enabled(): a checkpointed forward runs under no_grad and must still
        # draw the masks its recomputation will replay.
        return self.ctx.dropout if self.training else 0.0

    def _drop(self, x):
        p = self._dropout_p()
        return F.dropout(x, p, training=True) if p > 0 else x

    def forward(self, x):
        x = x + self._drop(self._attention(x))
        return x + self._drop(self._mlp(x))


class Post(Unit):
    kind = "post"

    def __init__(self, ctx, seed):
        d = ctx.d
        specs = [PSpec("final_norm.weight", (d.hidden,), None, "ones")]
        if not d.llama:
            specs.append(PSpec("final_norm.bias", (d.hidden,), None, "zeros"))
        groups = [[s.name for s in specs], ["head.weight"]]
        specs.append(PSpec("head.weight", (d.vpad, d.hidden), 0, "normal", vocab_rows=True))
        # A tied head starts as an exact copy of the embedding (same seed name); their gradients are summed.
        super().__init__("post", specs, groups, ctx, seed, {"head.weight": "embed.weight"} if d.tied else None)
        vl = d.vpad // ctx.tp
        self.vstart = ctx.tp_rank * vl
        self.valid = max(0, min(vl, d.vocab - self.vstart))

    def forward(self, x):
        c, d = self.ctx, self.ctx.d
        if d.llama:
            h = _rms(x, self.p("final_norm.weight"))
        else:
            h = F.layer_norm(x, (d.hidden,), self.p("final_norm.weight"), self.p("final_norm.bias"))
        logits = F.linear(comm.copy_to_tp(h, c.tpg), self.p("head.weight"))
        return comm.vocab_parallel_ce_sum(logits.reshape(-1, logits.shape[-1]), c.targets.reshape(-1), c.tpg, self.vstart, self.valid)


def build_units(first, last, is_first_stage, is_last_stage, ctx, seed):
    units = []
    if is_first_stage:
        units.append(Pre(ctx, seed))
    for i in range(first, last + 1):
        units.append(Block(i, ctx, seed))
    if is_last_stage:
        units.append(Post(ctx, seed))
    return units
