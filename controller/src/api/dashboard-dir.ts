/**
 * Where the built dashboard lives: dist/controller/src/dashboard (scripts/copy-assets.mjs copies
 * controller/src/dashboard and uPlot there). `mist up` and `mist controller` serve it at `/`; MIST_DASHBOARD_DIR
 * overrides it. Returns undefined when there is no index.html (the API then serves a placeholder page).
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export function dashboardDir(): string | undefined {
  const dir = process.env.MIST_DASHBOARD_DIR?.trim() || resolve(dirname(fileURLToPath(import.meta.url)), '..', 'dashboard');
  return existsSync(join(dir, 'index.html')) ? dir : undefined;
}
