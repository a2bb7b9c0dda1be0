// The console's first load budget: the JavaScript and CSS that dist/index.html loads (scripts,
// stylesheets and module preloads) must be at most 60 KiB gzip together. Pages, Chinese text and
// uPlot load later and are not counted. Run by `make test` after the build.
//
//   node scripts/check-budget.mjs [dist]

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const BUDGET = 60 * 1024;
const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(process.argv[2] ?? path.join(here, '../dist'));
const html = readFileSync(path.join(dist, 'index.html'), 'utf8');

const refs = new Set();
for (const m of html.matchAll(/<script\b[^>]*\bsrc="([^"]+)"/g)) refs.add(m[1]);
for (const m of html.matchAll(/<link\b[^>]*>/g)) {
  const tag = m[0];
  const rel = /\brel="([^"]+)"/.exec(tag)?.[1] ?? '';
  const href = /\bhref="([^"]+)"/.exec(tag)?.[1];
  if (href && /\b(stylesheet|modulepreload)\b/.test(rel)) refs.add(href);
}
if (refs.size === 0) {
  console.error(`check-budget: ${dist}/index.html loads no script or stylesheet; is it the built file?`);
  process.exit(1);
}

let total = 0;
for (const ref of refs) {
  if (/^[a-z]+:\/\//i.test(ref)) {
    console.error(`check-budget: ${ref} is not a local file (the console must load nothing from elsewhere)`);
    process.exit(1);
  }
  const file = path.join(dist, ref.replace(/^\.?\//, ''));
  const raw = readFileSync(file);
  const gz = gzipSync(raw, { level: 9 }).length;
  total += gz;
  console.log(`${(gz / 1024).toFixed(1).padStart(6)} KiB gzip  ${(raw.length / 1024).toFixed(1).padStart(6)} KiB  ${ref}`);
}
const verdict = total <= BUDGET ? 'within' : 'OVER';
console.log(`${(total / 1024).toFixed(1).padStart(6)} KiB gzip in all: ${verdict} the ${BUDGET / 1024} KiB budget`);
process.exit(total <= BUDGET ? 0 : 1);
