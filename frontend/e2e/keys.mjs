// The keys page beyond the journey's unlimited key (console.test.mjs): a key for another user
// with a quota in the display currency, an expiry, a model allow-list and rate limits, as the
// server stores them and enforces them; the owner filter; disable, edit, delete with confirmation.

import assert from 'node:assert/strict';
import { assertClean, call, goTo, openPage, signIn } from './harness.mjs';

/**
 * Chooses a user in an owner picker (components/users.tsx) by typing part of the name and
 * picking the match with the keyboard: the server searches, the input keeps focus.
 */
async function pickUser(scope, label, typed, username) {
  const box = scope.getByRole('combobox', { name: label });
  await box.fill(typed);
  await scope.getByRole('option', { name: username, exact: true }).waitFor();
  await box.press('ArrowDown');
  await box.press('Enter');
  assert.equal(await box.inputValue(), username);
  assert.equal(await box.getAttribute('aria-expanded'), 'false');
}

async function keyNamed(base, token, name) {
  const list = await call(base, 'GET', '/api/keys', { token });
  assert.equal(list.status, 200, list.text);
  return list.json.find((k) => k.name === name);
}

export async function keysPage(ctx, t, password) {
  const base = ctx.sluice.baseUrl;
  const token = ctx.token;
  // Two callable models (priced, on a channel to the mock) and a second user with a balance.
  const ch = await call(base, 'POST', '/api/channels', {
    token,
    body: { name: 'keys models', base_url: `${ctx.mock.baseUrl}/v1`, api_key: 'mock-key', models: ['keys-model-a', 'keys-model-b'] },
  });
  assert.equal(ch.status, 201, ch.text);
  const opts = await call(base, 'GET', '/api/option', { token });
  const ratio = { ...(opts.json.find((o) => o.name === 'pricing.model_ratio')?.value ?? {}), 'keys-model-a': 1, 'keys-model-b': 1 };
  assert.equal((await call(base, 'PUT', '/api/option', { token, body: { 'pricing.model_ratio': ratio } })).status, 200);
  const kim = await call(base, 'POST', '/api/users', { token, body: { username: 'kim-keys', password: 'kim-password-1', quota: 5_000_000 } });
  assert.equal(kim.status, 201, kim.text);
  // A key of root's, for the owner filter to leave out.
  assert.equal((await call(base, 'POST', '/api/keys', { token, body: { name: 'root own', unlimited: true } })).status, 201);

  const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base, timezoneId: 'UTC' });
  await signIn(page, base, 'root', password, { problems });
  await goTo(page, problems, 'API keys');
  await page.getByRole('button', { name: 'New key' }).click();
  const form = page.getByRole('dialog', { name: 'New API key' });
  await form.getByLabel('Name', { exact: true }).fill('limited');
  await pickUser(form, 'Owner', 'kim-k', 'kim-keys');
  // 1.5 in the display currency (USD: 500,000 quota units each).
  await form.getByLabel('Quota', { exact: true }).fill('1.5');
  await form.getByLabel('Expires').fill('2099-01-02T03:04');
  await form.getByRole('group', { name: 'Models allowed' }).getByLabel('keys-model-a').check();
  await form.getByLabel('Requests per minute (RPM)').fill('5');
  await form.getByLabel('Tokens per minute (TPM)').fill('100000');
  await form.getByRole('button', { name: 'Create key' }).click();
  const secretDialog = page.getByRole('dialog', { name: 'Your new key' });
  const secret = await secretDialog.getByLabel('Secret key').inputValue();
  await secretDialog.getByRole('button', { name: 'I have copied it' }).click();
  await secretDialog.waitFor({ state: 'hidden' });

  const k = await keyNamed(base, token, 'limited');
  assert.equal(k.user_id, kim.json.id);
  assert.equal(k.unlimited, false);
  assert.equal(k.remain_quota, 750_000);
  assert.equal(k.expires_at, Date.UTC(2099, 0, 2, 3, 4) / 1000);
  assert.deepEqual(k.models, ['keys-model-a']);
  assert.equal(k.rpm_limit, 5);
  assert.equal(k.tpm_limit, 100_000);
  // Enforced: the allowed model answers, the other is refused; the call is kim's.
  const chat = (model) => call(base, 'POST', '/v1/chat/completions', { token: secret, body: { model, messages: [{ role: 'user', content: 'hi' }] } });
  assert.equal((await chat('keys-model-a')).status, 200);
  assert.equal((await chat('keys-model-b')).status, 403);

  // The owner filter: kim's keys only.
  const rows = page.locator('tbody tr');
  await pickUser(page, 'Owner', 'kim', 'kim-keys');
  await page.waitForFunction(() => [...document.querySelectorAll('tbody tr th')].every((th) => th.textContent.startsWith('limited')));
  assert.equal(await rows.count(), 1);
  // Emptying the box is "All" again.
  await page.getByRole('combobox', { name: 'Owner' }).fill('');
  await page.locator('tbody tr', { hasText: 'root own' }).waitFor();

  // Disable: the row says so, and the key is refused.
  const row = page.locator(`tr[data-key-id="${k.id}"]`);
  await row.getByRole('button', { name: 'Disable: limited' }).click();
  await row.getByText('Disabled').waitFor();
  assert.equal((await keyNamed(base, token, 'limited')).enabled, false);
  assert.equal((await chat('keys-model-a')).status, 403);
  await row.getByRole('button', { name: 'Enable: limited' }).click();
  await row.getByText('Active').waitFor();

  // Edit: name and limit.
  await row.getByRole('button', { name: 'Edit: limited' }).click();
  const edit = page.getByRole('dialog', { name: 'Edit API key' });
  await edit.getByLabel('Name', { exact: true }).fill('limited-2');
  await edit.getByLabel('Requests per minute (RPM)').fill('9');
  await edit.getByRole('button', { name: 'Save', exact: true }).click();
  await edit.waitFor({ state: 'hidden' });
  const edited = await keyNamed(base, token, 'limited-2');
  assert.equal(edited.rpm_limit, 9);
  assert.deepEqual(edited.models, ['keys-model-a'], 'the allow-list is kept');
  assert.equal(edited.remain_quota + edited.used_quota, 750_000, 'the quota is kept (less the call made)');

  // Delete: asks first; Cancel keeps it, Delete removes it and the key stops working.
  await row.getByRole('button', { name: 'Delete: limited-2' }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete API key' });
  await confirm.getByText('Delete the key “limited-2”?', { exact: false }).waitFor();
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  assert.ok(await keyNamed(base, token, 'limited-2'), 'kept after Cancel');
  await row.getByRole('button', { name: 'Delete: limited-2' }).click();
  await confirm.getByRole('button', { name: 'Delete', exact: true }).click();
  await row.waitFor({ state: 'detached' });
  assert.equal(await keyNamed(base, token, 'limited-2'), undefined);
  assert.equal((await chat('keys-model-a')).status, 401);
  assertClean(problems, 'keys page');
}

/**
 * Issue 12: the page used to load the first 100 accounts and take owners from them, so with more
 * users a later one's key showed as `#<id>`, could not be filtered by, and could not be given a
 * key. Now the key list names owners and both owner choices search the server.
 */
export async function keysOwnersPastTheHundredth(ctx, t, password) {
  const base = ctx.sluice.baseUrl;
  const token = ctx.token;
  for (let i = 0; i < 100; i++) {
    const u = await call(base, 'POST', '/api/users', { token, body: { username: `owner-filler-${i}`, password: 'owner-filler-password' } });
    assert.equal(u.status, 201, u.text);
  }
  const late = await call(base, 'POST', '/api/users', { token, body: { username: 'late-owner', password: 'late-owner-password' } });
  assert.equal(late.status, 201, late.text);
  const first = await call(base, 'GET', '/api/users?page_size=100', { token });
  assert.equal(first.status, 200, first.text);
  assert.ok(!first.json.items.some((u) => u.id === late.json.id), 'late-owner is not among the first 100 users');
  const key = await call(base, 'POST', '/api/keys', { token, body: { name: 'late owner key', unlimited: true, user_id: late.json.id } });
  assert.equal(key.status, 201, key.text);

  const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base, timezoneId: 'UTC' });
  await signIn(page, base, 'root', password, { problems });
  await goTo(page, problems, 'API keys');

  // The owner column names the 101st user.
  await page.getByLabel('Search keys by name').fill('late owner key');
  const row = page.locator(`tr[data-key-id="${key.json.id}"]`);
  await row.waitFor();
  assert.equal((await row.locator('td').first().innerText()).trim(), 'late-owner');
  await page.getByLabel('Search keys by name').fill('');

  // The owner filter finds them by typing and shows only their keys.
  await pickUser(page, 'Owner', 'late-own', 'late-owner');
  await page.waitForFunction((id) => {
    const rows = [...document.querySelectorAll('tbody tr')];
    return rows.length === 1 && rows[0].getAttribute('data-key-id') === String(id);
  }, key.json.id);

  // The create dialog makes a key for them.
  await page.getByRole('button', { name: 'New key' }).click();
  const form = page.getByRole('dialog', { name: 'New API key' });
  await form.getByLabel('Name', { exact: true }).fill('made for late owner');
  await pickUser(form, 'Owner', 'late', 'late-owner');
  await form.getByLabel('Unlimited quota').check();
  await form.getByRole('button', { name: 'Create key' }).click();
  const secretDialog = page.getByRole('dialog', { name: 'Your new key' });
  await secretDialog.getByRole('button', { name: 'I have copied it' }).click();
  await secretDialog.waitFor({ state: 'hidden' });
  const mine = await call(base, 'GET', `/api/keys?user_id=${late.json.id}&sort=name`, { token });
  assert.equal(mine.status, 200, mine.text);
  assert.deepEqual(
    mine.json.items.map((k) => [k.name, k.username]),
    [
      ['late owner key', 'late-owner'],
      ['made for late owner', 'late-owner'],
    ],
  );
  // The filtered list shows the new key too, named as theirs.
  await page.locator('tbody tr', { hasText: 'made for late owner' }).waitFor();
  assertClean(problems, 'keys owners past the 100th user');
}
