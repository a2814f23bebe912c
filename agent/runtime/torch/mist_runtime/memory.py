"""Device-pool accounting, storage helpers, and saved-activation tracking/offloading.

On CUDA the reported peak is torch.cuda.max_memory_allocated; the accounted pool is reported alongside. On CPU the
"device pool" versus "host pool" is an accounting distinction: the runtime adds and removes the bytes of every
parameter, gradient, optimizer-state and saved-activation tensor that is resident on the device side, and keeps
the running maximum.
"""
import torch

KINDS = ("weights", "grads", "optimizer", "activations")


class Pool:
    def __init__(self):
        self.cur = {k: 0 for k in KINDS}
        self.host = {k: 0 for k in KINDS}
        self.peak = 0
        self.peak_by_kind = dict(self.cur)

    def add(self, kind, nbytes):
        self.cur[kind] += int(nbytes)
        total = sum(self.cur.values())
        if total > self.peak:
            self.peak = total
            self.peak_by_kind = dict(self.cur)

    def sub(self, kind, nbytes):
        self.cur[kind] -= int(nbytes)

    def add_host(self, kind, nbytes):
        self.host[kind] += int(nbytes)

    def reset_peak(self):
        self.peak = sum(self.cur.values())
        self.peak_by_kind = dict(self.cur)


def storage_of(t):
    return t.untyped_storage() if hasattr(t, "untyped_storage") else t.storage()


def storage_ptr(t):
    return storage_of(t).data_ptr()


def storage_nbytes(t):
    st = storage_of(t)
    return st.nbytes() if hasattr(st, "nbytes") else st.size() * t.element_size()


def free_storage(t):
    st = storage_of(t)
    if st.size() != 0:
        st.resize_(0)


def alloc_storage(t, numel):
    st = storage_of(t)
    n = numel * t.element_size() if hasattr(t, "untyped_storage") else numel
    if st.size() != n:
        st.resize_(n)


def host_empty(n, dtype, device):
    t = torch.empty(n, dtype=dtype)
    if device.type == "cuda":
        t = t.pin_memory()
    return t


class SplitVec:
    """A logical 1-D fp32 vector of length L: the first floor(L*(1-r)) elements on the device, the rest in host
    memory (r = offload ratio). `full()` returns a device copy; `assign()` writes one back."""

    def __init__(self, length, ratio, device, pool, kind):
        self.L = length
        self.k = int(length * (1.0 - ratio)) if ratio > 0 else length
        self.device, self.pool, self.kind = device, pool, kind
        self.dev = torch.zeros(self.k, dtype=torch.float32, device=device)
        self.host = host_empty(length - self.k, torch.float32, device).zero_()
        pool.add(kind, self.k * 4)
        pool.add_host(kind, (length - self.k) * 4)

    @property
    def host_bytes(self):
        return (self.L - self.k) * 4

    def full(self):
        if self.k == self.L:
            return self.dev.clone()
        return torch.cat([self.dev, self.host.to(self.device)])

    def assign(self, t):
        self.dev.copy_(t[: self.k])
        if self.k < self.L:
            self.host.copy_(t[self.k:])

    def add_(self, t):
        self.dev.add_(t[: self.k])
        if self.k < self.L:
            self.host.add_(t[self.k:].to("cpu"))

    def zero_(self):
        self.dev.zero_()
        self.host.zero_()


class _Record:
    def __init__(self):
        self.ptrs = set()
        self.dev = 0
        self.host = 0


class Activations:
    """Saved-tensor hooks: account each saved activation (once per storage) to the device pool for as long as its
    micro-batch is in flight, and move the planned fraction of large ones to host memory (Mist keeps
    floor(numel*(1-ao)) elements on the device and the rest in a host buffer)."""

    THRESHOLD = 1024

    def __init__(self, pool, device):
        self.pool, self.device = pool, device
        self.records = {}
        self.static_ptrs = set()  # parameter / buffer storages: never counted as activations
        self.param_ptrs = lambda: ()
        self.ratio = 0.0
        self.key = None

    def _rec(self, key):
        r = self.records.get(key)
        if r is None:
            r = self.records[key] = _Record()
        return r

    def note(self, key, t):
        """Count a tensor the runtime itself keeps for backward (a unit's input)."""
        if not torch.is_tensor(t) or not t.is_floating_point():
            return
        r = self._rec(key)
        p = storage_ptr(t)
        if p in r.ptrs:
            return
        r.ptrs.add(p)
        n = storage_nbytes(t)
        r.dev += n
        self.pool.add("activations", n)

    def release(self, key):
        r = self.records.pop(key, None)
        if r is not None:
            self.pool.sub("activations", r.dev)

    def hooks(self, key, ratio):
        self.key, self.ratio = key, ratio
        return torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def _pack(self, t):
        p = storage_ptr(t) if t.numel() else 0
        if not t.numel() or p in self.static_ptrs or p in self.param_ptrs():
            return ("raw", t)
        r = self._rec(self.key)
        if p in r.ptrs:
            return ("raw", t)
        es = t.element_size()
        if self.ratio > 0 and t.numel() >= self.THRESHOLD and t.is_floating_point():
            flat = t.detach().reshape(-1)
            keep = int(flat.numel() * (1.0 - self.ratio))
            dev = flat[:keep].clone()
            host = host_empty(flat.numel() - keep, t.dtype, self.device)
            host.copy_(flat[keep:])
            r.dev += keep * es
            r.host += (flat.numel() - keep) * es
            self.pool.add("activations", keep * es)
            return ("split", dev, host, t.shape)
        r.ptrs.add(p)
        n = storage_nbytes(t)
        r.dev += n
        self.pool.add("activations", n)
        return ("raw", t)

    def _unpack(self, packed):
        if packed[0] == "raw":
            return packed[1]
        _, dev, host, shape = packed
        return torch.cat([dev, host.to(dev.device, non_blocking=False)]).view(shape)
