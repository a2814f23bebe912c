// Writes charts/mist/crds/mistjobs.mist.io.yaml from the job schema (controller/src/operator/k8s/crd.ts).
// Run after `npm run build`: node scripts/gen-crd.mjs [--check]. With --check it writes nothing and exits 1 when
// the committed file differs (tests/unit/k8s/crd.test.ts checks the same).
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const mod = join(root, 'dist', 'controller', 'src', 'operator', 'k8s', 'crd.js');
if (!existsSync(mod)) {
  console.error('gen-crd: dist/ is missing; run `npm run build` first');
  process.exit(1);
}
const { renderCrdYaml, CRD_FILE } = await import(mod);
const file = join(root, CRD_FILE);
const text = renderCrdYaml();
const old = existsSync(file) ? readFileSync(file, 'utf8') : null;
if (process.argv.includes('--check')) {
  if (old !== text) {
    console.error(`gen-crd: ${CRD_FILE} is stale; run node scripts/gen-crd.mjs`);
    process.exit(1);
  }
  console.log(`gen-crd: ${CRD_FILE} is up to date`);
} else {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  console.log(`gen-crd: ${old === text ? 'unchanged' : 'wrote'} ${CRD_FILE}`);
}
