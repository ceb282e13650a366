// Copies the SDK into demo/ so the relay can serve demo/ as one static
// directory. `--check` exits 1 when demo/meridian.js is stale.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src', 'meridian.js');
const dst = join(root, 'demo', 'meridian.js');
const want = readFileSync(src, 'utf8');

if (process.argv.includes('--check')) {
  const have = existsSync(dst) ? readFileSync(dst, 'utf8') : null;
  if (have !== want) {
    console.error('demo/meridian.js is stale: run `npm run build:demo` in clients/js');
    process.exit(1);
  }
  console.log('demo/meridian.js is up to date');
} else {
  writeFileSync(dst, want);
  console.log(`copied ${src} -> ${dst}`);
}
