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

// The dashboard (controller/src/dashboard: plain ES modules, CSS, HTML; no bundler) and uPlot's prebuilt files,
// served by the controller from dist/controller/src/dashboard (docs/dashboard.md). Nothing is fetched from a CDN.
const dashSrc = join(root, 'controller', 'src', 'dashboard');
if (existsSync(dashSrc)) {
  const dashOut = join(root, 'dist', 'controller', 'src', 'dashboard');
  mkdirSync(dashOut, { recursive: true });
  cpSync(dashSrc, dashOut, { recursive: true, filter: (p) => !p.endsWith('.ts') });
  const uplot = join(root, 'node_modules', 'uplot', 'dist');
  const vendor = join(dashOut, 'vendor');
  mkdirSync(vendor, { recursive: true });
  for (const f of ['uPlot.iife.min.js', 'uPlot.min.css']) {
    if (existsSync(join(uplot, f))) cpSync(join(uplot, f), join(vendor, f));
    else process.stderr.write(`copy-assets: ${join(uplot, f)} is missing (npm ci installs uplot); the dashboard draws no charts without it\n`);
  }
  const lic = join(root, 'node_modules', 'uplot', 'LICENSE');
  if (existsSync(lic)) cpSync(lic, join(vendor, 'uPlot.LICENSE'));
}
