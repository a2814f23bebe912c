"""Entry point of one rank: `python3 agent/runtime/torch/train.py --plan PLAN.json [options]`.

Environment (set by `mist run-local` or the agent): RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT.
stdout: one JSON line per step from the rank (dp 0, tp 0) of every stage (see docs/runtimes.md):
  {"mist":"step","step":3,"rank":0,"stage":0,"loss":2.1,"stepSeconds":0.2,
   "stages":[{"stage":0,"forwardSeconds":..,"backwardSeconds":..}],"peakMemoryBytes":..,"tokens":..}
("loss" only on the last stage). Other lines: {"mist":"start",...}, {"mist":"checkpoint",...}, {"mist":"done",...}.
Errors go to stderr; the exit status is 0 on success, 2 on a bad plan or flag, 1 otherwise.
"""
import argparse
import json
import os
import sys
import threading
import time

import torch
import torch.distributed as dist

from . import checkpoint as ckpt
from . import comm
from .data import InMemory, Shards, Synthetic, batch_for
from .memory import Pool
from .model import Dims
from .plan import Layout, PlanError, load_plan, world_size
from .zero import Adam


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def watch_parent():
    """Exit if the launcher dies, so that no rank outlives it."""
    parent = os.getppid()

    def loop():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=loop, daemon=True).start()


def _env(name, default):
    """Defaults from the environment: the controller passes per-job settings as MIST_* variables (the agent's
    runtime argv is fixed by the admin's list, so a job cannot add flags)."""
    v = os.environ.get(name, "")
    return default if v == "" else v


def parse(argv):
    ap = argparse.ArgumentParser(prog="train.py", description="Mist reference runtime (one rank)")
    ap.add_argument("--plan", required=True)
    ap.add_argument("--steps", type=int, default=int(_env("MIST_STEPS", 10)))
    ap.add_argument("--seed", type=int, default=int(_env("MIST_SEED", 0)))
    ap.add_argument("--data", default=None, help="token-shard directory (index.json); default: synthetic (LLM) or built-in visual sentences (LVM)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=0, help="linear LR warm-up steps (default none)")
    ap.add_argument("--checkpoint-dir", default=_env("MIST_CHECKPOINT_DIR", None))
    ap.add_argument("--checkpoint-every", type=int, default=int(_env("MIST_CHECKPOINT_EVERY", 0)))
    ap.add_argument("--resume", action="store_true", default=_env("MIST_RESUME", "0") == "1")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--all-ranks-report", action="store_true", help="every rank prints step lines (default: rank dp0/tp0 of each stage)")
    return ap.parse_args(argv)


def make_source(args, plan, dims):
    if args.data:
        return Shards(args.data, plan["seqLen"])
    if dims.arch == "lvm":
        from .visual import make_visual_sentences
        m = plan["model"]
        tpi = int(m.get("tokensPerImage") or 16)
        ipp = int(m.get("imagesPerSequence") or max(1, plan["seqLen"] // tpi))
        toks, tok = make_visual_sentences(256, ipp, tpi, dims.vocab, seed=args.seed)
        return InMemory(toks.reshape(-1), plan["seqLen"], {"kind": "visual", "tokenizer": "patch-kmeans-%d" % tok.codebook_size})
    return Synthetic(dims.vocab, plan["seqLen"], args.seed)


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        plan = load_plan(args.plan)
    except (PlanError, OSError, ValueError) as e:
        sys.stderr.write("mist runtime: bad plan: %s\n" % e)
        return 2
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world != world_size(plan):
        sys.stderr.write("mist runtime: WORLD_SIZE %d but the plan needs %d ranks (sum over stages of dp x tp)\n" % (world, world_size(plan)))
        return 2
    if os.environ.get("MIST_WATCH_PARENT", "1") == "1":
        watch_parent()
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(max(1, int(os.environ.get("MIST_THREADS", "1"))))
    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world)
    torch.manual_seed(args.seed)
    layout = Layout(plan)
    groups = {}
    for kind, lists in (("tp", layout.tp_groups()), ("dp", layout.dp_groups()), ("tie", layout.tie_groups())):
        for ranks in lists:
            g = comm.Group(ranks, rank)
            if g.size > 1 and world > 1:
                g.pg = dist.new_group(ranks)
            if rank in ranks:
                groups[kind] = g
    coords = layout.coords[rank]
    dims = Dims(plan["model"], plan["seqLen"])
    if plan["model"].get("ffnHidden", 4 * dims.hidden) % layout.tp:
        sys.stderr.write("mist runtime: ffnHidden %d is not divisible by tp %d\n" % (dims.ffn, layout.tp))
        return 2
    pool = Pool()
    from .engine import Stage
    stage = Stage(plan, layout, coords, groups, dims, args.seed, device, pool)
    reporter = args.all_ranks_report or (coords[1] == 0 and coords[2] == 0)
    source = make_source(args, plan, dims)
    B, seq, dp = plan["globalBatch"], plan["seqLen"], layout.dp
    adam = Adam(lr=args.lr)
    start, samples = 0, 0
    if args.resume and args.checkpoint_dir:
        found = ckpt.latest(args.checkpoint_dir)
        if found:
            path, meta = found
            if meta.get("model", {}).get("layers") not in (None, dims.layers) or meta.get("model", {}).get("hidden") not in (None, dims.hidden):
                sys.stderr.write("mist runtime: checkpoint %s is for another model\n" % path)
                return 2
            ckpt.load(path, stage)
            start, samples = int(meta["step"]), int(meta.get("samples", int(meta["step"]) * B))
            if rank == 0:
                emit({"mist": "resume", "step": start, "path": path})
    if rank == 0:
        emit({"mist": "start", "world": world, "stages": layout.pp, "dp": dp, "tp": layout.tp, "device": str(device),
              "backend": dist.get_backend() if world > 1 else "none", "torch": torch.__version__, "startStep": start})
    fail_at = int(os.environ.get("MIST_TEST_FAIL_AT_STEP", "0") or 0)
    fail_rank = int(os.environ.get("MIST_TEST_FAIL_RANK", "0") or 0)
    for step in range(start + 1, args.steps + 1):
        if step == fail_at and rank == fail_rank:
            sys.stderr.write("mist runtime: MIST_TEST_FAIL_AT_STEP=%d: failing on purpose\n" % step)
            sys.stderr.flush()
            os._exit(1)
        comm.barrier()
        t0 = time.perf_counter()
        pool.reset_peak()
        if use_cuda:
            torch.cuda.reset_peak_memory_stats(device)

        def tokens(mb, _s=samples):
            return batch_for(source, 0, B, dp, coords[1], stage.micro, mb, samples_before=_s)

        stage.run_iteration(tokens)
        lr_t = adam.lr
        if args.warmup and step <= args.warmup:
            adam.lr = args.lr * step / args.warmup
        stage.optimizer_step(adam, step)
        adam.lr = lr_t
        loss = None
        if stage.last:
            t = torch.tensor([stage.loss_sum], dtype=torch.float64)
            if use_cuda:
                t = t.to(device)
            comm.all_reduce(t, stage.dpg)
            loss = float(t.item()) / (B * seq)
        if use_cuda:
            torch.cuda.synchronize(device)
        dt = time.perf_counter() - t0
        samples += B
        if reporter:
            line = {"mist": "step", "step": step, "rank": rank, "stage": coords[0]}
            if loss is not None:
                line["loss"] = loss
            line.update({
                "stepSeconds": dt,
                "stages": [{"stage": coords[0], "forwardSeconds": stage.fwd_s, "backwardSeconds": stage.bwd_s}],
                "peakMemoryBytes": int(torch.cuda.max_memory_allocated(device)) if use_cuda else pool.peak,
                "accountedPeakBytes": pool.peak,
                "peakByKind": pool.peak_by_kind,
                "tokens": B * seq,
            })
            emit(line)
        if args.checkpoint_dir and args.checkpoint_every and step % args.checkpoint_every == 0:
            meta = {"seed": args.seed, "model": plan["model"], "optimizer": {"name": "adam", "lr": args.lr, "betas": [adam.b1, adam.b2], "eps": adam.eps},
                    "plan": plan.get("id")}
            ckpt.save(args.checkpoint_dir, step, samples, stage, meta, rank)
            if rank == 0:
                emit({"mist": "checkpoint", "step": step, "dir": args.checkpoint_dir})
    comm.barrier()
    if rank == 0:
        emit({"mist": "done", "steps": args.steps})
    if world > 1:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
