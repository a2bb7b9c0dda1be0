// The operations page and the account's access token, driven as an operator does: a backup made
// and downloaded, a hot copy downloaded (both real SQLite files), reconcile, the log level switch,
// a CPU profile recorded and its flame graph shown in the page, old log rows deleted after a
// confirmation; an access token made, used and revoked; notifications to a receiver on loopback.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { assertClean, call, goTo, openPage, signIn, WAIT_MS } from './harness.mjs';

/** Clicks `link`, waits for the download, returns its bytes. */
async function download(page, link) {
  const [d] = await Promise.all([page.waitForEvent('download', { timeout: WAIT_MS }), link.click()]);
  const failure = await d.failure();
  assert.equal(failure, null, `download failed: ${failure}`);
  return readFile(await d.path());
}

const SQLITE = 'SQLite format 3\0';

export async function opsPage(ctx, t, password) {
  const base = ctx.sluice.baseUrl;
  const token = ctx.token;
  const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base, timezoneId: 'UTC' });
  await signIn(page, base, 'root', password, { problems });
  await goTo(page, problems, 'Operations');

  // Backups: made now, listed, downloaded; and a hot copy.
  const names = async () => (await call(base, 'GET', '/api/backups', { token })).json.map((b) => b.name);
  const before = await names();
  await page.getByRole('button', { name: 'Back up now' }).click();
  await page.getByRole('status').filter({ hasText: 'Backup made:' }).waitFor();
  const added = (await names()).filter((n) => !before.includes(n));
  assert.equal(added.length, 1, `one new backup: ${added}`);
  const file = await download(page, page.getByRole('link', { name: `Download: ${added[0]}` }));
  assert.equal(file.subarray(0, 16).toString('latin1'), SQLITE, 'the backup is a SQLite file');
  const hot = await download(page, page.getByRole('link', { name: 'Download a fresh copy' }));
  assert.equal(hot.subarray(0, 16).toString('latin1'), SQLITE, 'the hot copy is a SQLite file');

  // Reconcile: every balance agrees with the logs.
  await page.getByRole('button', { name: 'Check now' }).click();
  await page.getByText(/^Everything agrees: \d+ users and \d+ keys checked\.$/).waitFor();

  // The log level switch, both ways.
  const debug = page.getByLabel('Log DEBUG lines');
  await debug.check();
  await page.waitForFunction(async () => (await (await fetch('api/logging')).json()).debug === true);
  await debug.uncheck();
  await page.waitForFunction(async () => (await (await fetch('api/logging')).json()).debug === false);

  // A profile of one second, shown in the page as a flame graph.
  await page.getByLabel('Length (seconds)').fill('1');
  await page.getByRole('button', { name: 'Record a profile' }).click();
  await page.getByRole('button', { name: 'Recording…' }).waitFor({ state: 'detached', timeout: WAIT_MS });
  const profiles = (await call(base, 'GET', '/api/profiles', { token })).json.profiles;
  const shown = await page.getByTestId('flame-graph').getAttribute('src');
  assert.ok(profiles.some((p) => shown.endsWith(`profiles/${p.name}.svg`) && p.trigger === 'manual'), `${shown}`);
  await page.frameLocator('[data-testid=flame-graph]').locator('svg').first().waitFor();

  // Old log rows: deleted after a confirmation, and then gone.
  const consumed = (await call(base, 'GET', '/api/log?type=2', { token })).json.items.length;
  const cut = new Date(Date.now() + 120_000).toISOString().slice(0, 16);
  await page.getByLabel('Before', { exact: true }).fill(cut);
  await page.getByRole('button', { name: 'Delete rows' }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete old log rows' });
  await confirm.getByText(/^Delete consume, error and system log rows before /).waitFor();
  await confirm.getByRole('button', { name: 'Delete rows' }).click();
  const deleted = page.getByRole('status').filter({ hasText: /rows deleted\.$/ });
  await deleted.waitFor();
  const n = Number((await deleted.textContent()).replace(/[^0-9]/g, ''));
  assert.ok(n >= consumed, `${n} deleted, ${consumed} consume rows before`);
  assert.equal((await call(base, 'GET', '/api/log?type=2', { token })).json.items.length, 0);
  assertClean(problems, 'operations');
}

export async function accessToken(ctx, t, password) {
  const base = ctx.sluice.baseUrl;
  const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base });
  await signIn(page, base, 'root', password, { problems });
  await goTo(page, problems, 'Account');
  await page.getByRole('button', { name: 'Make a new token' }).click();
  const tok = await page.locator('input#access-token').inputValue();
  assert.match(tok, /\S{20,}/);
  assert.equal((await call(base, 'GET', '/api/me', { token: tok })).status, 200, 'the token works');
  await page.getByRole('button', { name: 'Revoke token' }).click();
  const confirm = page.getByRole('dialog', { name: 'Revoke token' });
  await confirm.getByRole('button', { name: 'Revoke token' }).click();
  await page.getByText('Your access token is revoked.').waitFor();
  assert.equal((await call(base, 'GET', '/api/me', { token: tok })).status, 401, 'revoked');
  assertClean(problems, 'access token');
}

/** A receiver on loopback that answers 200 and hands over each request it gets. */
function startReceiver() {
  const got = [];
  let wake = () => undefined;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      got.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(200).end('ok');
      wake();
    });
  });
  /** Resolves when `n` requests have come (bounded by WAIT_MS). */
  const received = (n) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`receiver: ${got.length} of ${n} requests`)), WAIT_MS);
      const check = () => {
        if (got.length >= n) {
          clearTimeout(timer);
          resolve(got);
        }
      };
      wake = check;
      check();
    });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, got, received, url: `http://127.0.0.1:${server.address().port}/hook` })));
}

/** Notifications on the account page: a webhook with a signing secret and a threshold in the
 * display currency, saved; the test button delivers to a real receiver; the history shows it. */
export async function notifications(ctx, t, password) {
  const base = ctx.sluice.baseUrl;
  const token = ctx.token;
  // The receiver is on loopback, which user-set URLs may not reach unless an admin allows it.
  assert.equal((await call(base, 'PUT', '/api/option', { token, body: { 'notify.ssrf_allow_hosts': ['127.0.0.1'] } })).status, 200);
  const rx = await startReceiver();
  t.after(async () => {
    await new Promise((resolve) => rx.server.close(resolve));
    await call(base, 'PUT', '/api/option', { token: ctx.token, body: { 'notify.ssrf_allow_hosts': [] } });
  });
  const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base });
  await signIn(page, base, 'root', password, { problems });
  await goTo(page, problems, 'Account');
  await page.getByText('Nothing sent yet.').waitFor();
  await page.getByLabel('Send by').selectOption('webhook');
  await page.getByLabel('Webhook URL').fill(rx.url);
  await page.getByLabel('Signing secret').fill('whsec-e2e-secret');
  await page.getByLabel('Use the default threshold').uncheck();
  await page.getByLabel('Warn below').fill('3');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
  const s = (await call(base, 'GET', '/api/me/notify', { token })).json;
  assert.equal(s.kind, 'webhook');
  assert.equal(s.webhook_url, rx.url);
  assert.equal(s.webhook_secret_set, true);
  assert.equal(s.quota_warning_threshold, 1_500_000, '3 USD in quota units');

  await page.getByRole('button', { name: 'Send a test' }).click();
  await page.getByRole('status').filter({ hasText: 'Test sent.' }).waitFor();
  const [hit] = await rx.received(1);
  assert.equal(hit.method, 'POST');
  assert.ok(JSON.parse(hit.body), 'a JSON body');
  const history = page.locator('table', { has: page.getByRole('columnheader', { name: 'Outcome' }) }).locator('tbody tr');
  await history.first().waitFor();
  assert.match(await history.first().textContent(), /Test.*Sent/);
  // The secret is write-only: not on the page after a reload.
  await page.reload();
  await page.getByText('A secret is stored; type a new one to replace it.').waitFor();
  assert.ok(!(await page.content()).includes('whsec-e2e-secret'));
  assertClean(problems, 'notifications');
}
