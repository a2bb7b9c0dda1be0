// The console behind a reverse proxy that serves it under a sub-path and strips the prefix,
// as nginx does with `location /llm/ { proxy_pass http://127.0.0.1:3000/; }`. The proxy answers
// 404 to anything outside /llm/, so a single absolute URL in the app (an asset, an API call, a
// link) fails the test.

import assert from 'node:assert/strict';
import http from 'node:http';
import { assertClean, call, openPage, settle, signIn, WAIT_MS } from './harness.mjs';
import { PAGES } from './pages.mjs';

const PREFIX = '/llm';

/** A prefix-stripping proxy on 127.0.0.1 (keeps Host, as `proxy_set_header Host $host` does). */
function startProxy(target) {
  const up = new URL(target);
  const outside = [];
  const server = http.createServer((req, res) => {
    if (!req.url.startsWith(`${PREFIX}/`)) {
      outside.push(`${req.method} ${req.url}`);
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('outside the prefix');
      return;
    }
    const forward = http.request(
      { host: up.hostname, port: up.port, method: req.method, path: req.url.slice(PREFIX.length), headers: req.headers, timeout: WAIT_MS },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    forward.on('timeout', () => forward.destroy(new Error('upstream timeout')));
    forward.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(forward);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, outside, url: `http://127.0.0.1:${server.address().port}${PREFIX}/` }));
  });
}

export async function proxyUnderPrefix(ctx, t, password) {
  const proxy = await startProxy(ctx.sluice.baseUrl);
  t.after(() => new Promise((resolve) => proxy.server.close(resolve)));
  proxy.server.unref();
  const { page, problems } = await openPage(ctx.browser, t, { baseUrl: proxy.url });
  const urls = [];
  page.on('request', (r) => urls.push(r.url()));

  await signIn(page, proxy.url.replace(/\/$/, ''), 'root', password, { problems });
  await settle(page, problems);
  assert.equal(await page.locator('h1').textContent(), 'Dashboard');

  // Every page through the navigation, as a user clicks it.
  for (const p of PAGES) {
    const link = page.locator(`nav.nav a[href="${PREFIX}/${p.path}"]`);
    assert.equal(await link.count(), 1, `nav link to ${PREFIX}/${p.path}`);
    await link.click();
    await page.waitForURL(`${proxy.url}${p.path}`);
    await settle(page, problems);
  }
  // A deep link loads by itself (assets and API relative to the prefix).
  await page.goto(`${proxy.url}keys`);
  await settle(page, problems);
  assert.equal(await page.locator('h1').textContent(), 'API keys');

  // A new key's base URL is the proxied one, and works.
  await page.getByRole('button', { name: 'New key' }).click();
  const form = page.getByRole('dialog', { name: 'New API key' });
  await form.getByLabel('Name', { exact: true }).fill('behind the proxy');
  await form.getByLabel('Unlimited quota').check();
  await form.getByRole('button', { name: 'Create key' }).click();
  const dialog = page.getByRole('dialog', { name: 'Your new key' });
  const baseUrl = await dialog.getByLabel('Base URL').inputValue();
  assert.equal(baseUrl, `${proxy.url}v1`);
  const secret = await dialog.getByLabel('Secret key').inputValue();
  const r = await call(baseUrl.replace(/\/v1$/, ''), 'POST', '/v1/chat/completions', {
    token: secret,
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'through the proxy' }] },
  });
  assert.equal(r.status, 200, r.text);

  // Signing out and in again stays under the prefix.
  await dialog.getByRole('button', { name: 'I have copied it' }).click();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('input[name=username]').waitFor();

  assert.deepEqual(proxy.outside, [], 'requests outside the prefix');
  const stray = urls.filter((u) => !u.startsWith(proxy.url));
  assert.deepEqual(stray, [], 'the browser asked for URLs outside the prefix');
  assertClean(problems, 'proxy', { allowHttp: [`${PREFIX}/api/me`] });
}
