// The users page (admin): server-side search and paging, create with a balance in the display
// currency, edit role/group/enabled (a disabled user cannot sign in), a balance change that
// writes a top-up row, per-user usage, delete with confirmation.

import assert from 'node:assert/strict';
import { assertClean, call, goTo, openPage, signIn } from './harness.mjs';

async function userNamed(base, token, name) {
  const r = await call(base, 'GET', `/api/users?q=${encodeURIComponent(name)}`, { token });
  assert.equal(r.status, 200, r.text);
  return r.json.items.find((u) => u.username === name);
}

export async function usersPage(ctx, t, password) {
  const base = ctx.sluice.baseUrl;
  const token = ctx.token;
  // 21 users sharing a name part: one more than a page (20).
  for (let i = 0; i < 21; i++) {
    const r = await call(base, 'POST', '/api/users', { token, body: { username: `pager-${String(i).padStart(2, '0')}`, password: 'pager-password', quota: 0 } });
    assert.equal(r.status, 201, r.text);
  }
  const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base });
  await signIn(page, base, 'root', password, { problems });
  await goTo(page, problems, 'Users');

  // Search and paging happen on the server: 21 matches, 20 on the first page, 1 on the second.
  await page.getByLabel('Search users by name or ID').fill('pager-');
  const status = page.locator('nav.pager [role=status]');
  await page.waitForFunction(() => document.querySelector('nav.pager [role=status]')?.textContent === 'Page 1 of 2 (21 in all)');
  assert.equal(await page.locator('tbody tr').count(), 20);
  await page.locator('nav.pager').getByRole('button', { name: 'Next' }).click();
  await page.waitForFunction(() => document.querySelector('nav.pager [role=status]')?.textContent === 'Page 2 of 2 (21 in all)');
  // The page number changes on the click; the rows when the second page's answer comes.
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);
  assert.equal((await page.locator('tbody tr th').textContent()).trim(), 'pager-20');
  assert.equal(await status.count(), 1);

  // Create, with 2 in the display currency (USD: 1,000,000 quota units).
  await page.getByLabel('Search users by name or ID').fill('');
  await page.getByRole('button', { name: 'New user' }).click();
  const form = page.getByRole('dialog', { name: 'New user' });
  await form.getByLabel('Username').fill('uma');
  await form.getByLabel('Password', { exact: true }).fill('uma-password-1');
  await form.getByLabel('Group').fill('team-a');
  await form.getByLabel('Balance').fill('2');
  await form.getByRole('button', { name: 'Create user' }).click();
  await form.waitFor({ state: 'hidden' });
  let uma = await userNamed(base, token, 'uma');
  assert.equal(uma.quota, 1_000_000);
  assert.equal(uma.group, 'team-a');
  assert.equal(uma.role, 'user');

  // Edit: group, role, disabled; a disabled user cannot sign in.
  await page.getByLabel('Search users by name or ID').fill('uma');
  const row = page.locator(`tr[data-user-id="${uma.id}"]`);
  await row.getByRole('button', { name: 'Edit: uma' }).click();
  const edit = page.getByRole('dialog', { name: 'Edit user' });
  await edit.getByLabel('Group').fill('team-b');
  await edit.getByLabel('Role').selectOption('admin');
  await edit.getByLabel('Enabled').uncheck();
  await edit.getByRole('button', { name: 'Save', exact: true }).click();
  await edit.waitFor({ state: 'hidden' });
  uma = await userNamed(base, token, 'uma');
  assert.deepEqual([uma.group, uma.role, uma.enabled], ['team-b', 'admin', false]);
  assert.equal((await call(base, 'POST', '/api/auth/login', { body: { username: 'uma', password: 'uma-password-1' } })).status, 403);
  await row.getByText('Disabled').waitFor();

  // Balance: add 0.5, then try to take away more than there is.
  await row.getByRole('button', { name: 'Balance: uma' }).click();
  const bal = page.getByRole('dialog', { name: 'Change balance' });
  await bal.getByLabel('Amount').fill('0.5');
  await bal.getByRole('button', { name: 'Apply' }).click();
  await bal.waitFor({ state: 'hidden' });
  assert.equal((await userNamed(base, token, 'uma')).quota, 1_250_000);
  const topups = await call(base, 'GET', `/api/log?type=1&username=uma`, { token });
  assert.equal(topups.status, 200, topups.text);
  assert.ok(
    topups.json.items.some((r) => r.quota === 250_000),
    `a top-up row of 250,000: ${JSON.stringify(topups.json.items.map((r) => [r.type, r.quota]))}`,
  );
  await row.getByRole('button', { name: 'Balance: uma' }).click();
  await bal.getByLabel('Subtract').check();
  await bal.getByLabel('Amount').fill('10');
  await bal.getByRole('button', { name: 'Apply' }).click();
  await bal.getByText(/cannot go below zero/).waitFor();
  await bal.getByRole('button', { name: 'Close' }).click();
  assert.equal((await userNamed(base, token, 'uma')).quota, 1_250_000, 'nothing taken');

  // Per-user usage opens with its table.
  await row.getByRole('button', { name: 'Usage: uma' }).click();
  const usage = page.getByRole('dialog', { name: 'Usage in the last 30 days' });
  await usage.getByText('Last 30 days.').waitFor();
  await usage.getByRole('button', { name: 'Close' }).click();

  // Delete asks first.
  await row.getByRole('button', { name: 'Delete: uma' }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete user' });
  await confirm.getByRole('button', { name: 'Delete', exact: true }).click();
  await row.waitFor({ state: 'detached' });
  assert.equal(await userNamed(base, token, 'uma'), undefined);
  assertClean(problems, 'users page');
}
