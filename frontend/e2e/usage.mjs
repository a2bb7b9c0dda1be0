// The usage page split every way: each split's rows add up to the same total, and the calls of
// one key through one channel land in that key's, that channel's and each model's row.

import assert from 'node:assert/strict';
import { assertClean, call, goTo, openPage, signIn, WAIT_MS } from './harness.mjs';

/** The totals table as {name: requests} with its footer total, once it shows split `by`. */
async function table(page) {
  return page.getByTestId('usage-totals').evaluate((t) => {
    const rows = {};
    for (const tr of t.querySelectorAll('tbody tr')) rows[tr.querySelector('th').textContent.trim()] = Number(tr.querySelector('td').textContent.replace(/[^0-9]/g, ''));
    return { rows, total: Number(t.querySelector('[data-testid=usage-total-requests]').getAttribute('data-value')) };
  });
}

export async function usageSplits(ctx, t, password) {
  const base = ctx.sluice.baseUrl;
  const token = ctx.token;
  const ch = await call(base, 'POST', '/api/channels', { token, body: { name: 'usage channel', base_url: `${ctx.mock.baseUrl}/v1`, api_key: 'mock-key', models: ['use-a', 'use-b'] } });
  assert.equal(ch.status, 201, ch.text);
  const opts = (await call(base, 'GET', '/api/option', { token })).json;
  const ratio = { ...(opts.find((o) => o.name === 'pricing.model_ratio')?.value ?? {}), 'use-a': 1, 'use-b': 1 };
  assert.equal((await call(base, 'PUT', '/api/option', { token, body: { 'pricing.model_ratio': ratio } })).status, 200);
  assert.equal((await call(base, 'PATCH', '/api/users/1', { token, body: { quota: 50_000_000 } })).status, 200);
  const key = await call(base, 'POST', '/api/keys', { token, body: { name: 'usage key', unlimited: true } });
  assert.equal(key.status, 201, key.text);
  for (const model of ['use-a', 'use-a', 'use-a', 'use-a', 'use-b', 'use-b']) {
    const r = await call(base, 'POST', '/v1/chat/completions', { token: key.json.key, body: { model, messages: [{ role: 'user', content: 'hi' }] } });
    assert.equal(r.status, 200, r.text);
  }

  const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base, timezoneId: 'UTC' });
  await signIn(page, base, 'root', password, { problems });
  await goTo(page, problems, 'Usage');
  const split = page.getByLabel('Split by', { exact: true });
  const totals = [];
  for (const [by, name, want] of [
    ['model', 'use-a', 4],
    ['key', 'usage key', 6],
    ['channel', 'usage channel', 6],
    ['user', 'root', null],
  ]) {
    await split.selectOption(by);
    // The first column's heading names the split; the row appears once names are loaded.
    await page.getByTestId('usage-totals').locator('tbody th', { hasText: name }).first().waitFor({ timeout: WAIT_MS }).catch(async (e) => {
      throw new Error(`${by}: ${e.message} ${JSON.stringify(await table(page))}`);
    });
    const { rows, total } = await table(page);
    assert.equal(Object.values(rows).reduce((s, n) => s + n, 0), total, `${by}: rows add up to the total (${JSON.stringify(rows)})`);
    if (want !== null) assert.equal(rows[name], want, `${by}: ${JSON.stringify(rows)}`);
    if (by === 'model') assert.equal(rows['use-b'], 2);
    totals.push(total);
  }
  assert.ok(totals.every((x) => x === totals[0] && x >= 6), `the same total every way: ${totals}`);
  assertClean(problems, 'usage splits');
}

/**
 * A key made after 100 others is named on the usage page split by key. The page used to name
 * keys from a 100-row list of them (issue 12), so this one showed as `#<id>`; the names now come
 * with the series.
 */
export async function usageNamesPastTheHundredth(ctx, t, password) {
  const base = ctx.sluice.baseUrl;
  const token = ctx.token;
  const ch = await call(base, 'POST', '/api/channels', { token, body: { name: 'names channel', base_url: `${ctx.mock.baseUrl}/v1`, api_key: 'mock-key', models: ['names-model'] } });
  assert.equal(ch.status, 201, ch.text);
  const opts = (await call(base, 'GET', '/api/option', { token })).json;
  const ratio = { ...(opts.find((o) => o.name === 'pricing.model_ratio')?.value ?? {}), 'names-model': 1 };
  assert.equal((await call(base, 'PUT', '/api/option', { token, body: { 'pricing.model_ratio': ratio } })).status, 200);
  assert.equal((await call(base, 'PATCH', '/api/users/1', { token, body: { quota: 50_000_000 } })).status, 200);
  // 100 keys of another account (at most 100 each, keys.max_per_user), then root's key.
  const other = await call(base, 'POST', '/api/users', { token, body: { username: 'hundred-keys', password: 'hundred-keys-password' } });
  assert.equal(other.status, 201, other.text);
  for (let i = 0; i < 100; i++) {
    const k = await call(base, 'POST', '/api/keys', { token, body: { name: `filler ${i}`, unlimited: true, user_id: other.json.id } });
    assert.equal(k.status, 201, k.text);
  }
  const key = await call(base, 'POST', '/api/keys', { token, body: { name: 'key past the hundredth', unlimited: true } });
  assert.equal(key.status, 201, key.text);
  const first = await call(base, 'GET', '/api/keys?page_size=100', { token });
  assert.equal(first.status, 200, first.text);
  assert.ok(!first.json.items.some((k) => k.id === key.json.id), 'the key is not on the first page of 100');
  const r = await call(base, 'POST', '/v1/chat/completions', { token: key.json.key, body: { model: 'names-model', messages: [{ role: 'user', content: 'hi' }] } });
  assert.equal(r.status, 200, r.text);

  const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base, timezoneId: 'UTC' });
  await signIn(page, base, 'root', password, { problems });
  await goTo(page, problems, 'Usage');
  await page.getByLabel('Split by', { exact: true }).selectOption('key');
  await page.getByTestId('usage-totals').locator('tbody th', { hasText: 'key past the hundredth' }).waitFor({ timeout: WAIT_MS }).catch(async (e) => {
    throw new Error(`${e.message} ${JSON.stringify(await table(page))}`);
  });
  const { rows } = await table(page);
  assert.equal(rows['key past the hundredth'], 1, JSON.stringify(rows));
  assert.ok(!(`#${key.json.id}` in rows), JSON.stringify(rows));
  assertClean(problems, 'usage names past the 100th key');
}
