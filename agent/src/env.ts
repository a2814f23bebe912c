/**
 * The job environment allow-list. A job may pass environment variables to its ranks, but only these; everything
 * else is refused (the whole launch fails with BAD_INPUT naming the variable), so a job can neither load code into
 * the rank (LD_PRELOAD, PYTHONPATH, NODE_OPTIONS, NCCL_NET_PLUGIN, ...) nor override what the agent sets.
 *
 *   allowed:  MIST_*            except the reserved names below
 *             NCCL_*            except NCCL_NET_PLUGIN, NCCL_TUNER_PLUGIN, NCCL_PROFILER_PLUGIN, NCCL_DEBUG_FILE,
 *                               NCCL_TOPO_FILE, NCCL_TOPO_DUMP_FILE, NCCL_GRAPH_FILE, NCCL_GRAPH_DUMP_FILE (they load
 *                               plugins or read/write host paths)
 *             CUDA_*            except CUDA_VISIBLE_DEVICES (the agent sets it from the placement)
 *             OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS, PYTORCH_CUDA_ALLOC_CONF,
 *             TORCH_DISTRIBUTED_DEBUG, TORCH_NCCL_ASYNC_ERROR_HANDLING, TORCH_NCCL_BLOCKING_WAIT,
 *             TORCH_SHOW_CPP_STACKTRACES, TOKENIZERS_PARALLELISM
 *   refused:  everything else — explicitly LD_PRELOAD, LD_LIBRARY_PATH, PATH, PYTHONPATH, NODE_OPTIONS
 *
 * Names must match [A-Z_][A-Z0-9_]*; values must not contain NUL and are at most 4096 bytes.
 */
import { MistError } from '../../protocol/src/errors.js';

/** Variables the agent sets on every rank; a job may not set them. */
export const RESERVED_ENV = [
  'RANK',
  'WORLD_SIZE',
  'LOCAL_RANK',
  'LOCAL_WORLD_SIZE',
  'MASTER_ADDR',
  'MASTER_PORT',
  'CUDA_VISIBLE_DEVICES',
  'MIST_PLAN_FILE',
  'MIST_STATE_DIR',
  'MIST_RANK_DIR',
  'MIST_JOB',
  'MIST_ATTEMPT',
  'MIST_NODE',
  'MIST_STAGE',
  'MIST_DEVICE',
  'MIST_NATS_URL',
  'MIST_PYTHON',
] as const;

const RESERVED = new Set<string>(RESERVED_ENV);
const EXACT = new Set([
  'OMP_NUM_THREADS',
  'MKL_NUM_THREADS',
  'OPENBLAS_NUM_THREADS',
  'PYTORCH_CUDA_ALLOC_CONF',
  'TORCH_DISTRIBUTED_DEBUG',
  'TORCH_NCCL_ASYNC_ERROR_HANDLING',
  'TORCH_NCCL_BLOCKING_WAIT',
  'TORCH_SHOW_CPP_STACKTRACES',
  'TOKENIZERS_PARALLELISM',
]);
const NCCL_REFUSED = new Set([
  'NCCL_NET_PLUGIN',
  'NCCL_TUNER_PLUGIN',
  'NCCL_PROFILER_PLUGIN',
  'NCCL_DEBUG_FILE',
  'NCCL_TOPO_FILE',
  'NCCL_TOPO_DUMP_FILE',
  'NCCL_GRAPH_FILE',
  'NCCL_GRAPH_DUMP_FILE',
]);
const NAME = /^[A-Z_][A-Z0-9_]*$/;
const MAX_VALUE_BYTES = 4096;

/** Why `name` may not be set by a job, or null when it may. */
export function envRefusal(name: string): string | null {
  if (!NAME.test(name)) return 'not a valid variable name ([A-Z_][A-Z0-9_]*)';
  if (RESERVED.has(name)) return 'reserved: the agent sets it';
  if (EXACT.has(name)) return null;
  if (name.startsWith('MIST_')) return null;
  if (name.startsWith('NCCL_')) return NCCL_REFUSED.has(name) ? 'loads a plugin or touches a host path' : null;
  if (name.startsWith('CUDA_')) return null;
  return 'not in the allow-list (MIST_*, NCCL_*, CUDA_*, OMP/MKL/OPENBLAS_NUM_THREADS, PYTORCH_CUDA_ALLOC_CONF, TORCH_* debug knobs; see docs/agent.md)';
}

/** Checks a job's environment against the allow-list; throws BAD_INPUT naming the first refused variable. */
export function checkJobEnv(env: Record<string, string>): void {
  for (const [name, value] of Object.entries(env)) {
    const why = envRefusal(name);
    if (why) throw new MistError('BAD_INPUT', `launch.env.${name}: refused (${why})`);
    if (typeof value !== 'string' || value.includes('\0')) throw new MistError('BAD_INPUT', `launch.env.${name}: value must be a string without NUL`);
    if (Buffer.byteLength(value) > MAX_VALUE_BYTES) throw new MistError('BAD_INPUT', `launch.env.${name}: value longer than ${MAX_VALUE_BYTES} bytes`);
  }
}

/** Agent-process variables never passed on to ranks (NATS credentials). */
const AGENT_PRIVATE = /^(MIST_NATS_(USER|PASSWORD|CREDS|TOKEN)|NATS_.*)$/;

/** The rank environment: the agent's own (minus its secrets and reserved names), the job's, then the agent's own settings. */
export function rankEnv(base: NodeJS.ProcessEnv, job: Record<string, string>, fixed: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !AGENT_PRIVATE.test(k) && !RESERVED.has(k)) out[k] = v;
  Object.assign(out, job, fixed);
  return out;
}
