"""Plan-independent checkpoints.

    DIR/latest                      name of the newest complete checkpoint ("step-00000006")
    DIR/step-00000006/meta.json     {"format": "mist-checkpoint", "version": 1, "step", "samples", "seed", "model", "optimizer", "plan"}
    DIR/step-00000006/pre.pt        embedding (and GPT positions)
    DIR/step-00000006/layer-00003.pt  one file per transformer layer
    DIR/step-00000006/post.pt       final norm and head (a tied head is not stored: it is pre.pt's embedding)

Each .pt holds {param name: {"w": full tensor, "m": Adam exp_avg, "v": Adam exp_avg_sq}} with full (TP- and
DP-unsharded, vocabulary unpadded) tensors, written by the rank (dp 0, tp 0) of the stage that owns the layer.
meta.json is written last, then `latest`; an interrupted save is never picked up. Because nothing in the files
depends on the plan, a run can resume under any other plan of the same model.
"""
import json
import os

import torch

from . import comm
from .model import tp_slice


def _gather_tp(local, spec, tpg):
    if spec.split is None or tpg.size == 1:
        return local.detach().clone().cpu()
    return torch.cat([t.cpu() for t in comm.all_gather_list(local.contiguous(), tpg)], dim=spec.split)


def save(directory, step, samples, stage, meta_extra, rank):
    name = "step-%08d" % step
    path = os.path.join(directory, name)
    os.makedirs(path, exist_ok=True)
    writer = stage.dp_rank == 0 and stage.tp_rank == 0
    vocab = stage.dims.vocab
    for u in stage.units:
        entries = {}
        for h in u.handles:
            w, m, v = h.full_states()
            for n, pw, pm, pv in zip(h.names, h.split(w), h.split(m), h.split(v)):
                spec = u.specs[n]
                e = {k: _gather_tp(t, spec, stage.tpg) for k, t in (("w", pw), ("m", pm), ("v", pv))}
                if spec.vocab_rows:
                    e = {k: t[:vocab].clone() for k, t in e.items()}
                if n == "head.weight" and stage.dims.tied:
                    continue
                entries[n] = e
        if writer:
            tmp = os.path.join(path, u.key + ".pt.tmp")
            torch.save(entries, tmp)
            os.replace(tmp, os.path.join(path, u.key + ".pt"))
    comm.barrier()
    if rank == 0:
        meta = {"format": "mist-checkpoint", "version": 1, "step": step, "samples": samples}
        meta.update(meta_extra)
        tmp = os.path.join(path, "meta.json.tmp")
        with open(tmp, "w") as f:
            json.dump(meta, f, indent=1)
        os.replace(tmp, os.path.join(path, "meta.json"))
        tmp = os.path.join(directory, "latest.tmp")
        with open(tmp, "w") as f:
            f.write(name + "\n")
        os.replace(tmp, os.path.join(directory, "latest"))
    comm.barrier()


def latest(directory):
    try:
        with open(os.path.join(directory, "latest")) as f:
            name = f.read().strip()
    except FileNotFoundError:
        return None
    path = os.path.join(directory, name)
    try:
        with open(os.path.join(path, "meta.json")) as f:
            return path, json.load(f)
    except FileNotFoundError:
        return None


def load(path, stage):
    d = stage.dims
    cache = {}

    def entry(unit_key, name):
        if name == "head.weight" and d.tied:
            unit_key, name = "pre", "embed.weight"
        if unit_key not in cache:
            f = os.path.join(path, unit_key + ".pt")
            if not os.path.exists(f):
                raise FileNotFoundError("checkpoint %s has no %s.pt (was it written for another model?)" % (path, unit_key))
            cache[unit_key] = torch.load(f, map_location="cpu")
        if name not in cache[unit_key]:
            raise KeyError("checkpoint %s/%s.pt has no %s" % (path, unit_key, name))
        return cache[unit_key][name]

    for u in stage.units:
        for h in u.handles:
            flats = {k: torch.zeros(h.Npad, dtype=torch.float32) for k in ("w", "m", "v")}
            for n, p, off in zip(h.names, h.params, h.offsets):
                spec = u.specs[n]
                e = entry(u.key, n)
                for k in ("w", "m", "v"):
                    full = e[k]
                    if spec.vocab_rows and full.shape[0] < spec.shape[0]:
                        full = torch.cat([full, torch.zeros((spec.shape[0] - full.shape[0],) + tuple(full.shape[1:]))])
                    if tuple(full.shape) != spec.shape:
                        raise ValueError("checkpoint %s: %s has shape %s, the model needs %s" % (path, n, tuple(full.shape), spec.shape))
                    flats[k][off:off + p.numel()] = tp_slice(full, spec, stage.ctx.tp, stage.tp_rank).reshape(-1)
            h.load_states(*(flats[k].to(stage.device) for k in ("w", "m", "v")))
