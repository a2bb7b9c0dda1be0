// The logs page with a filter set (the journey exports the default view): the model, key and
// request id filters, cursor paging forwards and back, a sort, and the CSV export of exactly the
// filter shown, whose rows and sums equal the totals bar and which carries the cache columns.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { assertClean, call, goTo, openPage, signIn, WAIT_MS } from './harness.mjs';

async function value(page, testid) {
  return Number(await page.getByTestId(testid).getAttribute('data-value'));
}

/** Waits until the totals bar shows `n` requests (the filters are debounced). */
async function requestsShown(page, n) {
  await page.waitForFunction((want) => document.querySelector('[data-testid=total-requests]')?.getAttribute('data-value') === String(want), n, { timeout: WAIT_MS });
}

/** Waits until the list has `n` rows (its answer may come after the totals'). */
async function rowsShown(page, n) {
  await page.waitForFunction((want) => document.querySelectorAll('table.logs-table tbody tr').length === want, n, { timeout: WAIT_MS });
}

export async function logsFiltered(ctx, t, password) {
  const base = ctx.sluice.baseUrl;
  const token = ctx.token;
  const c = await call(base, 'POST', '/api/channels', {
    token,
    body: { name: 'logs models', base_url: `${ctx.mock.baseUrl}/v1`, api_key: 'mock-key', models: ['logs-a', 'logs-b'] },
  });
  assert.equal(c.status, 201, c.text);
  const opts = await call(base, 'GET', '/api/option', { token });
  const ratio = { ...(opts.json.find((o) => o.name === 'pricing.model_ratio')?.value ?? {}), 'logs-a': 1, 'logs-b': 2 };
  assert.equal((await call(base, 'PUT', '/api/option', { token, body: { 'pricing.model_ratio': ratio } })).status, 200);
  assert.equal((await call(base, 'PATCH', '/api/users/1', { token, body: { quota: 50_000_000 } })).status, 200);
  const key = await call(base, 'POST', '/api/keys', { token, body: { name: 'logs key', unlimited: true } });
  assert.equal(key.status, 201, key.text);
  // 52 calls of one model (one page of 50 and two more), 3 of another with growing lengths.
  const ids = { 'logs-a': [], 'logs-b': [] };
  for (const [model, n] of [['logs-a', 52], ['logs-b', 3]]) {
    for (let i = 0; i < n; i++) {
      const r = await call(base, 'POST', '/v1/chat/completions', {
        token: key.json.key,
        body: { model, max_tokens: 1 + i, messages: [{ role: 'user', content: 'hi' }] },
      });
      assert.equal(r.status, 200, r.text);
      ids[model].push(r.headers.get('x-request-id'));
    }
  }

  const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base });
  await signIn(page, base, 'root', password, { problems });
  await goTo(page, problems, 'Logs');
  await page.getByLabel('Key', { exact: true }).fill('logs key');
  await requestsShown(page, 55);

  // Model filter: 3 rows; the export of this filter equals the totals bar.
  await page.getByLabel('Model', { exact: true }).fill('logs-b');
  await requestsShown(page, 3);
  await rowsShown(page, 3);
  const rows = page.locator('table.logs-table tbody tr');
  const quota = await value(page, 'total-quota');
  const tokens = await value(page, 'total-tokens');
  const href = await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href');
  assert.match(href, /model_name=logs-b/);
  assert.match(href, /token_name=logs(\+|%20)key/);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
  const csv = (await readFile(await download.path(), 'utf8')).trim().split('\n');
  const cols = csv[0].split(',');
  for (const col of ['cache_read_tokens', 'cache_write_tokens', 'cache_write_1h_tokens', 'reasoning_tokens']) assert.ok(cols.includes(col), `CSV header has ${col}`);
  const at = (name) => cols.indexOf(name);
  const lines = csv.slice(1).map((l) => l.split(','));
  assert.equal(lines.length, 3, 'only the filtered rows');
  assert.ok(lines.every((r) => r[at('model')] === 'logs-b' && r[at('key_name')] === 'logs key'));
  assert.deepEqual(lines.map((r) => r[at('request_id')]).sort(), [...ids['logs-b']].sort());
  assert.equal(lines.reduce((s, r) => s + Number(r[at('quota')]), 0), quota);
  assert.equal(lines.reduce((s, r) => s + Number(r[at('prompt_tokens')]) + Number(r[at('completion_tokens')]), 0), tokens);

  // Sort by output tokens, ascending then descending (the calls asked for 1, 2, 3).
  const sortButton = page.getByRole('button', { name: 'Output tokens', exact: true });
  const sorted = (order) =>
    page.waitForFunction(
      (o) => {
        const cells = [...document.querySelectorAll('table.logs-table tbody tr td:nth-child(7)')].map((td) => td.textContent.trim());
        return JSON.stringify(cells) === JSON.stringify(o);
      },
      order,
      { timeout: WAIT_MS },
    );
  // The mock answers max_tokens words: the calls had 1, 2 and 3 output tokens.
  await sortButton.click();
  await sorted(['3', '2', '1']);
  assert.equal(await page.locator('th[aria-sort="descending"]').textContent(), 'Output tokens ▼');
  await sortButton.click();
  await sorted(['1', '2', '3']);
  assert.equal(await page.locator('th[aria-sort="ascending"]').textContent(), 'Output tokens ▲');

  // Cursor paging over the other model: 50, then 2, then back to 50.
  await page.getByRole('button', { name: 'Time', exact: true }).click();
  await page.getByLabel('Model', { exact: true }).fill('logs-a');
  await requestsShown(page, 52);
  await rowsShown(page, 50);
  const firstPage = await page.locator('table.logs-table tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.requestId));
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByText('Page 2', { exact: true }).waitFor();
  await rowsShown(page, 2);
  const secondPage = await page.locator('table.logs-table tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.requestId));
  assert.deepEqual([...firstPage, ...secondPage].sort(), [...ids['logs-a']].sort(), 'each row once over the two pages');
  await page.getByRole('button', { name: 'Previous' }).click();
  await page.getByText('Page 1', { exact: true }).waitFor();
  await rowsShown(page, 50);

  // The request id filter finds one row.
  await page.getByRole('button', { name: 'Clear filters' }).click();
  await page.getByLabel('Request ID', { exact: true }).fill(ids['logs-a'][7]);
  await requestsShown(page, 1);
  await rowsShown(page, 1);
  assert.equal(await rows.getAttribute('data-request-id'), ids['logs-a'][7]);
  assertClean(problems, 'logs filtered');
}
