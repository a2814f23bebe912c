"""Reads a Plan (DESIGN.md §4) and lays its ranks out: stage-major, then data-parallel, then tensor-parallel
(rank = stage_base + dp_rank * tp + tp_rank), unless the plan's `placement` names each rank's coordinates."""
import json


class PlanError(ValueError):
    pass


def load_plan(path):
    with open(path) as f:
        plan = json.load(f)
    check_plan(plan)
    return plan


def _int(v, what, lo=1):
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        raise PlanError("%s: expected an integer >= %d, got %r" % (what, lo, v))
    return v


def check_plan(plan):
    if not isinstance(plan, dict):
        raise PlanError("plan: must be a JSON object")
    m = plan.get("model")
    if not isinstance(m, dict):
        raise PlanError("model: the plan's model must be an object of dims (arch, layers, hidden, ...)")
    if m.get("arch") not in ("gpt", "llama", "lvm"):
        raise PlanError("model.arch: expected gpt, llama or lvm, got %r" % m.get("arch"))
    for k in ("layers", "hidden", "heads", "vocab"):
        _int(m.get(k), "model." + k)
    heads = m["heads"]
    kv = m.get("kvHeads", heads)
    if m["hidden"] % heads:
        raise PlanError("model.hidden %d is not divisible by heads %d" % (m["hidden"], heads))
    if heads % kv:
        raise PlanError("model.heads %d is not divisible by kvHeads %d" % (heads, kv))
    stages = plan.get("stages")
    if not isinstance(stages, list) or not stages:
        raise PlanError("stages: at least one stage is required")
    nxt = 0
    for i, s in enumerate(stages):
        lay = s.get("layers")
        if not (isinstance(lay, list) and len(lay) == 2 and lay[0] == nxt and lay[1] >= lay[0]):
            raise PlanError("stages[%d].layers: expected [%d, last] (inclusive, contiguous), got %r" % (i, nxt, lay))
        nxt = lay[1] + 1
        dp, tp = _int(s.get("dp"), "stages[%d].dp" % i), _int(s.get("tp"), "stages[%d].tp" % i)
        _int(s.get("microBatch"), "stages[%d].microBatch" % i)
        if s.get("zero", 0) not in (0, 1, 2, 3):
            raise PlanError("stages[%d].zero: expected 0..3" % i)
        if s.get("splitBackward", False) not in (True, False):
            raise PlanError("stages[%d].splitBackward: expected true or false, got %r" % (i, s.get("splitBackward")))
        if s.get("splitBackward") and float((s.get("offload") or {}).get("activations", 0) or 0) > 0:
            raise PlanError("stages[%d].splitBackward: cannot combine with activation offloading" % i)
        if heads % tp or kv % tp:
            raise PlanError("stages[%d].tp %d must divide heads %d and kvHeads %d" % (i, tp, heads, kv))
        if (s.get("dp"), s.get("tp"), s.get("microBatch")) != (stages[0]["dp"], stages[0]["tp"], stages[0]["microBatch"]):
            raise PlanError("stages[%d]: v1 plans use the same dp, tp and microBatch in every stage" % i)
    if nxt != m["layers"]:
        raise PlanError("stages: layer ranges cover %d layers, the model has %d" % (nxt, m["layers"]))
    s0 = stages[0]
    g = _int(plan.get("gradAccum"), "gradAccum")
    gb = _int(plan.get("globalBatch"), "globalBatch")
    if s0["dp"] * s0["microBatch"] * g != gb:
        raise PlanError("globalBatch %d != dp %d x microBatch %d x gradAccum %d" % (gb, s0["dp"], s0["microBatch"], g))
    _int(plan.get("seqLen"), "seqLen")
    if m["arch"] == "gpt" and plan["seqLen"] > m.get("seqLen", plan["seqLen"]):
        raise PlanError("seqLen %d exceeds the model's learned positions %d" % (plan["seqLen"], m["seqLen"]))


def world_size(plan):
    return sum(s["dp"] * s["tp"] for s in plan["stages"])


class Layout:
    """Coordinates of every rank; `coords[rank] = (stage, dp_rank, tp_rank)`."""

    def __init__(self, plan):
        self.stages = plan["stages"]
        self.pp = len(self.stages)
        self.dp = self.stages[0]["dp"]
        self.tp = self.stages[0]["tp"]
        self.world = world_size(plan)
        self.coords = {}
        placement = plan.get("placement") or []
        if len(placement) == self.world and all({"rank", "stage", "dpRank", "tpRank"} <= set(p) for p in placement):
            for p in placement:
                self.coords[p["rank"]] = (p["stage"], p["dpRank"], p["tpRank"])
        else:
            r = 0
            for s in range(self.pp):
                for d in range(self.dp):
                    for t in range(self.tp):
                        self.coords[r] = (s, d, t)
                        r += 1
        self.rank_of = {c: r for r, c in self.coords.items()}
        if len(self.rank_of) != self.world:
            raise PlanError("placement: ranks do not map one-to-one onto (stage, dpRank, tpRank)")

    def tp_groups(self):
        return [[self.rank_of[(s, d, t)] for t in range(self.tp)] for s in range(self.pp) for d in range(self.dp)]

    def dp_groups(self):
        return [[self.rank_of[(s, d, t)] for d in range(self.dp)] for s in range(self.pp) for t in range(self.tp)]

    def tie_groups(self):
        if self.pp == 1:
            return []
        return [[self.rank_of[(0, d, t)], self.rank_of[(self.pp - 1, d, t)]] for d in range(self.dp) for t in range(self.tp)]
