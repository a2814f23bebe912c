"""Training data, indexed by global sample so that every plan sees the same tokens.

Sample g of a run is the token window [g*seqLen, g*seqLen + seqLen + 1) of the source (inputs are the first
seqLen tokens, targets the last seqLen). Sources:
  * synthetic: seeded, learnable sequences (each follows a fixed random permutation of the vocabulary from a
    random start, with a short repeating motif), so the loss falls within a few steps;
  * token shards: a directory with index.json and uint16 .bin files (LLM text or LVM visual sentences), written by
    `write_shards` (and by `python -m mist_runtime.visual make ...`).
"""
import json
import os

import torch

try:
    import numpy as np
except Exception:  # numpy is optional
    np = None


class Synthetic:
    def __init__(self, vocab, seq_len, seed):
        self.vocab, self.seq, self.seed = vocab, seq_len, seed
        g = torch.Generator().manual_seed(seed * 7919 + 17)
        self.alphabet = min(vocab, 32)  # a small alphabet and a fixed successor map: quick to learn
        self.ids = torch.randperm(vocab, generator=g)[: self.alphabet]
        self.perm = torch.randperm(self.alphabet, generator=g)

    def sample(self, index):
        g = torch.Generator().manual_seed((self.seed * 1000003 + index * 7 + 1) % (2 ** 62))
        start = int(torch.randint(0, self.alphabet, (1,), generator=g))
        period = int(torch.randint(3, 9, (1,), generator=g))
        out = torch.empty(self.seq + 1, dtype=torch.long)
        t = start
        for i in range(self.seq + 1):
            # a permutation walk that restarts every `period` tokens: repeating, learnable patterns
            if i % period == 0:
                t = start
            out[i] = int(self.ids[t])
            t = int(self.perm[t])
        return out


class Shards:
    """index.json: {"format": "mist-tokens", "version": 1, "dtype": "uint16", "vocab": V, "kind": "text"|"visual",
    "shards": [{"file": "shard-00000.bin", "tokens": n}, ...], ...}"""

    def __init__(self, directory, seq_len):
        with open(os.path.join(directory, "index.json")) as f:
            self.index = json.load(f)
        if self.index.get("format") != "mist-tokens" or self.index.get("dtype") != "uint16":
            raise ValueError("%s: not a mist-tokens uint16 index" % directory)
        parts = []
        for s in self.index["shards"]:
            path = os.path.join(directory, s["file"])
            if np is not None:
                parts.append(torch.from_numpy(np.fromfile(path, dtype=np.uint16).astype(np.int64)))
            else:
                import array
                a = array.array("H")
                with open(path, "rb") as f:
                    a.frombytes(f.read())
                parts.append(torch.tensor(a.tolist(), dtype=torch.long))
        self.tokens = torch.cat(parts)
        self.seq = seq_len
        if self.tokens.numel() < seq_len + 1:
            raise ValueError("%s: %d tokens, fewer than one sample of %d" % (directory, self.tokens.numel(), seq_len + 1))
        self.windows = (self.tokens.numel() - 1) // seq_len

    @property
    def vocab(self):
        return self.index.get("vocab")

    def sample(self, index):
        w = index % self.windows
        return self.tokens[w * self.seq: w * self.seq + self.seq + 1].clone()


class InMemory(Shards):
    def __init__(self, tokens, seq_len, index=None):
        self.index = index or {}
        self.tokens = tokens.long()
        self.seq = seq_len
        self.windows = (self.tokens.numel() - 1) // seq_len


def write_shards(directory, tokens, vocab, kind="text", shard_tokens=1 << 20, extra=None):
    os.makedirs(directory, exist_ok=True)
    if tokens.numel() and int(tokens.max()) >= 65536:
        raise ValueError("uint16 shards hold token ids < 65536")
    shards = []
    flat = tokens.reshape(-1).to(torch.int32)
    for i in range(0, flat.numel(), shard_tokens):
        part = flat[i:i + shard_tokens]
        name = "shard-%05d.bin" % len(shards)
        data = part.numpy().astype("uint16").tobytes() if np is not None else _u16(part)
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
        shards.append({"file": name, "tokens": int(part.numel())})
    index = {"format": "mist-tokens", "version": 1, "dtype": "uint16", "vocab": int(vocab), "kind": kind, "shards": shards}
    index.update(extra or {})
    tmp = os.path.join(directory, "index.json.tmp")
    with open(tmp, "w") as f:
        json.dump(index, f, indent=1)
    os.replace(tmp, os.path.join(directory, "index.json"))
    return index


def _u16(t):
    import array
    return array.array("H", [int(x) for x in t.tolist()]).tobytes()


def batch_for(source, step_index, global_batch, dp, dp_rank, micro, mb, samples_before=None):
    """Tokens [micro, seq+1] of micro-batch `mb` of `dp_rank` in step `step_index` (0-based). Each dp rank takes a
    contiguous block of globalBatch/dp samples; global sample = samples_before + position in the step."""
    base = (samples_before if samples_before is not None else step_index * global_batch) + dp_rank * (global_batch // dp) + mb * micro
    return torch.stack([source.sample(base + i) for i in range(micro)])
