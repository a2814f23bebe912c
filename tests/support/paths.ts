/** Paths tests need. Tests run from dist/tests/**, so the repository root is three levels above this file. */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const mistBin = join(repoRoot, 'dist', 'controller', 'src', 'cli', 'main.js');
