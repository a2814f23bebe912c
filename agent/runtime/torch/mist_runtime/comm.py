"""The one collective shim, process groups, and the tensor-parallel autograd functions.

On gloo with PyTorch 1.13 there is no reduce-scatter and no flat all-gather (all-reduce, list all-gather and
isend/irecv exist). `reduce_scatter_flat` and `all_gather_flat` emulate them there (all-reduce + slice, list
all-gather + cat) and use the native ops where the backend has them (nccl on current PyTorch).
"""
import torch
import torch.distributed as dist


class Group:
    """A process group plus this rank's index in it (a one-member group needs no communicator)."""

    def __init__(self, ranks, me):
        self.ranks = list(ranks)
        self.size = len(self.ranks)
        self.index = self.ranks.index(me) if me in self.ranks else -1
        self.pg = None

    def __repr__(self):
        return "Group(%s)" % self.ranks


def _native():
    return dist.is_initialized() and dist.get_backend() == "nccl"


def all_reduce(t, group):
    """Sum in place over the group."""
    if group.size > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group.pg)
    return t


def max_reduce(t, group):
    if group.size > 1:
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group.pg)
    return t


def all_gather_flat(local, group):
    """Concatenation of every member's equal-length 1-D `local`, in group order."""
    if group.size == 1:
        return local.clone()
    out = torch.empty(local.numel() * group.size, dtype=local.dtype, device=local.device)
    if _native() and hasattr(dist, "all_gather_into_tensor"):
        dist.all_gather_into_tensor(out, local.contiguous(), group=group.pg)
    else:
        dist.all_gather(list(out.chunk(group.size)), local.contiguous(), group=group.pg)
    return out


def all_gather_list(local, group):
    """List all-gather (supported everywhere) of same-shape tensors."""
    if group.size == 1:
        return [local]
    out = [torch.empty_like(local) for _ in range(group.size)]
    dist.all_gather(out, local.contiguous(), group=group.pg)
    return out


def reduce_scatter_flat(full, group):
    """This member's 1/size chunk of the group sum of 1-D `full` (length divisible by size)."""
    if group.size == 1:
        return full.clone()
    n = full.numel() // group.size
    if _native() and hasattr(dist, "reduce_scatter_tensor"):
        out = torch.empty(n, dtype=full.dtype, device=full.device)
        dist.reduce_scatter_tensor(out, full.contiguous(), op=dist.ReduceOp.SUM, group=group.pg)
        return out
    tmp = full.clone()
    dist.all_reduce(tmp, op=dist.ReduceOp.SUM, group=group.pg)
    return tmp[group.index * n:(group.index + 1) * n].clone()


def barrier():
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


# ---- tensor-parallel autograd functions (Megatron's f and g) ----

class _CopyToTP(torch.autograd.Function):
    """Identity forward; all-reduce of the gradient backward (input of a column-parallel linear)."""

    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        g = g.contiguous().clone()
        all_reduce(g, ctx.group)
        return g, None


class _ReduceFromTP(torch.autograd.Function):
    """All-reduce forward; identity backward (output of a row-parallel linear)."""

    @staticmethod
    def forward(ctx, x, group):
        x = x.contiguous().clone()
        all_reduce(x, group)
        return x

    @staticmethod
    def backward(ctx, g):
        return g, None


def copy_to_tp(x, group):
    return x if group.size == 1 else _CopyToTP.apply(x, group)


def reduce_from_tp(x, group):
    return x if group.size == 1 else _ReduceFromTP.apply(x, group)


class _VocabParallelCE(torch.autograd.Function):
    """Sum over tokens of cross-entropy with logits split over the vocabulary across the TP group (Megatron's
    vocab_parallel_cross_entropy). logits: [n, V/tp] local; targets: [n] global ids; padded vocab rows are masked."""

    @staticmethod
    def forward(ctx, logits, targets, group, vstart, valid):
        logits = logits.float()
        if valid < logits.shape[-1]:
            logits = logits.clone()
            logits[:, valid:] = float("-inf")
        lmax = logits.max(dim=-1)[0]
        max_reduce(lmax, group)
        shifted = logits - lmax.unsqueeze(-1)
        vlocal = logits.shape[-1]
        local_t = targets - vstart
        inside = (local_t >= 0) & (local_t < vlocal)
        idx = local_t.clamp(0, vlocal - 1)
        picked = shifted.gather(1, idx.unsqueeze(1)).squeeze(1)
        picked = torch.where(inside, picked, torch.zeros_like(picked))
        all_reduce(picked, group)
        exp = shifted.exp()
        sumexp = exp.sum(dim=-1)
        all_reduce(sumexp, group)
        loss = sumexp.log() - picked
        softmax = exp / sumexp.unsqueeze(-1)
        ctx.save_for_backward(softmax, idx, inside)
        return loss.sum()

    @staticmethod
    def backward(ctx, g):
        softmax, idx, inside = ctx.saved_tensors
        grad = softmax.clone()
        rows = torch.arange(grad.shape[0], device=grad.device)
        grad[rows, idx] -= inside.to(grad.dtype)
        return grad * g, None, None, None, None


def vocab_parallel_ce_sum(logits, targets, group, vstart, valid):
    """`valid`: how many local columns are real vocabulary (the rest is padding)."""
    return _VocabParallelCE.apply(logits, targets, group, vstart, valid)


# ---- point-to-point (pipeline) ----

def p2p_start(sends, recvs):
    """sends: [(tensor, peer)], recvs: [(tensor, peer)]; posts all and returns the requests (p2p_wait)."""
    reqs = []
    for t, peer in recvs:
        reqs.append(dist.irecv(t, src=peer))
    for t, peer in sends:
        reqs.append(dist.isend(t.contiguous(), dst=peer))
    return reqs


def p2p_wait(reqs):
    for r in reqs:
        r.wait()


def p2p(sends, recvs):
    """Posts all, then waits for all (no deadlock when the peer posts the mirrored pair)."""
    p2p_wait(p2p_start(sends, recvs))
