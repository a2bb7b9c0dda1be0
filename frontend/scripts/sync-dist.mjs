// Moves a fresh Vite build into dist/ touching only the files whose bytes changed, and removes
// the ones the build no longer makes. cargo rebuilds the binary when any file under dist/ is
// newer than its last build (build.rs: rerun-if-changed=frontend/dist), so rewriting identical
// files on every `make` would relink the release binary (fat LTO, minutes) for nothing, e.g.
// `make deb` right after `make test` in CI.
//
//   node scripts/sync-dist.mjs <fresh build dir> <dist>

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const [from, to] = process.argv.slice(2);
if (!from || !to) {
  console.error('usage: node scripts/sync-dist.mjs <fresh build dir> <dist>');
  process.exit(2);
}

/** Every file under `dir`, as paths relative to it. */
function files(dir, prefix = '') {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(path.join(dir, e.name), path.join(prefix, e.name)) : [path.join(prefix, e.name)],
  );
}

const fresh = new Set(files(from));
let changed = 0;
for (const f of fresh) {
  const src = readFileSync(path.join(from, f));
  const dest = path.join(to, f);
  if (existsSync(dest) && statSync(dest).isFile() && readFileSync(dest).equals(src)) continue;
  mkdirSync(path.dirname(dest), { recursive: true });
  writeFileSync(dest, src);
  changed++;
}
let removed = 0;
for (const f of files(to)) {
  if (!fresh.has(f)) {
    rmSync(path.join(to, f));
    removed++;
  }
}
rmSync(from, { recursive: true, force: true });
console.log(`dist: ${changed} files written, ${removed} removed, ${fresh.size - changed} unchanged`);
