// The demo page imports ./meridian.js, which is a symlink to the SDK in
// src/, so the relay serves demo/ as one static directory without a second
// copy of the SDK. This script (re)creates the link; `--check` exits 1 when
// demo/meridian.js is missing or is not the SDK.
import { readFileSync, existsSync, rmSync, symlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src', 'meridian.js');
const dst = join(root, 'demo', 'meridian.js');
const want = readFileSync(src, 'utf8');

if (process.argv.includes('--check')) {
  const have = existsSync(dst) ? readFileSync(dst, 'utf8') : null;
  if (have !== want) {
    console.error('demo/meridian.js is not the SDK: run `npm run build:demo` in clients/js');
    process.exit(1);
  }
  console.log('demo/meridian.js is the SDK');
} else {
  rmSync(dst, { force: true });
  symlinkSync('../src/meridian.js', dst);
  console.log(`linked ${dst} -> ../src/meridian.js`);
}
