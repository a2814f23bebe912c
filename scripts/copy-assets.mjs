// Copies what tsc does not emit into dist/: the generated protobuf static module, and marks the CLI executable.
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const gen = join(root, 'protocol', 'gen');
if (existsSync(gen)) {
  const out = join(root, 'dist', 'protocol', 'gen');
  mkdirSync(out, { recursive: true });
  for (const f of readdirSync(gen)) if (f.endsWith('.js')) cpSync(join(gen, f), join(out, f));
}
const cli = join(root, 'dist', 'controller', 'src', 'cli', 'main.js');
if (existsSync(cli)) chmodSync(cli, 0o755);
