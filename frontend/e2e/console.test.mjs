// The web console in real Chromium against the real sluice binary and the project's mock
// upstream: the journeys of issue 12, every page in both languages (translation, console,
// requests, axe-core, keyboard, screenshots), the first-run banner and password change, and a
// reverse proxy under a sub-path.
//
//   node --test e2e/          (from frontend/; `make test` runs it)
//
// Environment: SLUICE_BIN, SLUICE_MOCK_BIN, CHROMIUM_BIN (see harness.mjs); SCREENSHOTS=0 skips
// writing docs/screenshots/.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  adminToken,
  assertClean,
  call,
  checkTools,
  launchBrowser,
  openPage,
  rawGet,
  readText,
  removeDir,
  settle,
  signIn,
  startMock,
  startSluice,
  stopProcess,
  tempDir,
  WAIT_MS,
  waitForText,
  goTo,
} from './harness.mjs';
import { everyPage } from './pages.mjs';
import { proxyUnderPrefix } from './proxy.mjs';
import { channelRows, responsesOption } from './channels.mjs';
import { keysOwnersPastTheHundredth, keysPage } from './keys.mjs';
import { usersPage } from './users.mjs';
import { accessToken, notifications, opsPage } from './ops.mjs';
import { logsFiltered } from './logs.mjs';
import { usageNamesPastTheHundredth, usageSplits } from './usage.mjs';
import { languageAndTheme, modelsPage, settingsExportImport } from './prefs.mjs';

const ctx = { dataDir: '', sluice: null, mock: null, browser: null, rootPassword: '', token: '' };
const NEW_ROOT_PASSWORD = 'console-e2e-root-password';
const T = 120_000;

/** Reads a number the page shows in `data-value` (raw, not formatted). */
async function value(page, testid) {
  return Number(await page.getByTestId(testid).getAttribute('data-value'));
}

describe('sluice web console', { timeout: 15 * 60_000 }, () => {
  before(async () => {
    checkTools();
    ctx.dataDir = await tempDir('sluice-e2e-');
    ctx.mock = await startMock();
    // No configured root password: the server generates one into <data>/initial-root-password,
    // which is what makes the first-run banner appear.
    ctx.sluice = await startSluice(ctx.dataDir);
    ctx.rootPassword = await readText(path.join(ctx.dataDir, 'initial-root-password'));
    ctx.browser = await launchBrowser();
  });

  after(async () => {
    const errors = [];
    await ctx.browser?.close().catch((e) => errors.push(e));
    await stopProcess(ctx.sluice).catch((e) => errors.push(e));
    await stopProcess(ctx.mock).catch((e) => errors.push(e));
    await removeDir(ctx.dataDir).catch((e) => errors.push(e));
    if (errors.length) throw errors[0];
  });

  test('sign-in refuses a wrong password and says so', { timeout: T }, async (t) => {
    const base = ctx.sluice.baseUrl;
    const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base });
    await page.goto(`${base}/`);
    await page.locator('input[name=username]').fill('root');
    await page.locator('input[name=password]').fill('definitely-not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await waitForText(page, '#signin-error', 'Wrong username or password.');
    assert.equal(await page.locator('nav.nav').count(), 0, 'no navigation while signed out');
    assert.equal(await page.locator('h1').textContent(), 'Sign in');
    // The signed-out check of /api/me and the refused sign-in are the expected 401s.
    assertClean(problems, 'sign-in', { allowHttp: ['/api/me', '/api/auth/login'] });
  });

  test('first run: the banner asks root to change the password; the change ends the other sessions and the token', { timeout: T }, async (t) => {
    const base = ctx.sluice.baseUrl;
    // A second browser session and an access token, both made before the change.
    const other = await openPage(ctx.browser, t, { baseUrl: base });
    await signIn(other.page, base, 'root', ctx.rootPassword);
    const oldToken = await adminToken(base, 'root', ctx.rootPassword);
    assert.equal((await call(base, 'GET', '/api/me', { token: oldToken })).status, 200);

    const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base });
    await signIn(page, base, 'root', ctx.rootPassword, { problems });
    const banner = page.getByRole('region', { name: 'First run' });
    await banner.waitFor();
    await banner.getByRole('link', { name: 'Change it now' }).click();
    await page.locator('#password').waitFor();
    assert.equal(await page.locator('h1').textContent(), 'Account');

    await page.getByLabel('Current password').fill(ctx.rootPassword);
    await page.getByLabel('New password', { exact: true }).fill(NEW_ROOT_PASSWORD);
    await page.getByLabel('New password again').fill(NEW_ROOT_PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByTestId('password-changed').waitFor();
    await banner.waitFor({ state: 'detached' });
    assertClean(problems, 'password change');

    // This session goes on; the other one and the old token are over.
    assert.equal(await page.evaluate(async () => (await fetch('api/me')).status), 200);
    assert.equal((await call(base, 'GET', '/api/me', { token: oldToken })).status, 401, 'old access token');
    await other.page.getByRole('link', { name: 'API keys', exact: true }).click();
    await other.page.getByText('Your session has ended. Sign in again.').waitFor();
    assert.equal(await other.page.locator('h1').textContent(), 'Sign in');
    // The old password no longer signs in; the new one does.
    assert.equal((await call(base, 'POST', '/api/auth/login', { body: { username: 'root', password: ctx.rootPassword } })).status, 401);
    ctx.token = await adminToken(base, 'root', NEW_ROOT_PASSWORD);
  });

  test('journey: channel → test → key → copy → relay → logs → usage → dashboard → CSV totals = totals bar', { timeout: 3 * T }, async (t) => {
    const base = ctx.sluice.baseUrl;
    const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base });
    await signIn(page, base, 'root', NEW_ROOT_PASSWORD, { problems });
    // Root needs a balance for the calls.
    assert.equal((await call(base, 'PATCH', '/api/users/1', { token: ctx.token, body: { quota: 50_000_000 } })).status, 200);

    // A channel, made in the form.
    await goTo(page, problems, 'Channels');
    await page.getByRole('button', { name: 'New channel' }).click();
    const form = page.getByRole('dialog', { name: 'New channel' });
    await form.getByLabel('Name', { exact: true }).fill('mock upstream');
    await form.getByLabel('Base URL').fill(`${ctx.mock.baseUrl}/v1`);
    await form.getByLabel('Upstream API key').fill('mock-key');
    await form.getByLabel('Models', { exact: true }).fill('gpt-4o-mini\ngpt-4o');
    await form.getByRole('button', { name: 'Create channel' }).click();
    await form.waitFor({ state: 'hidden' });
    const row = page.locator('tr', { hasText: 'mock upstream' });
    await row.waitFor();

    // Test it from its row.
    await row.getByRole('button', { name: 'Test: mock upstream' }).click();
    await row.getByText('Passed').waitFor();

    // A key, and its secret copied with the button.
    await goTo(page, problems, 'API keys');
    await page.getByRole('button', { name: 'New key' }).click();
    const keyForm = page.getByRole('dialog', { name: 'New API key' });
    await keyForm.getByLabel('Name', { exact: true }).fill('journey');
    await keyForm.getByLabel('Unlimited quota').check();
    await keyForm.getByRole('button', { name: 'Create key' }).click();
    const secretDialog = page.getByRole('dialog', { name: 'Your new key' });
    await secretDialog.waitFor();
    const shown = await secretDialog.getByLabel('Secret key').inputValue();
    assert.match(shown, /^sk-[A-Za-z0-9]{20,}$/);
    assert.equal(await secretDialog.getByLabel('Base URL').inputValue(), `${base}/v1`);
    await secretDialog.getByRole('button', { name: 'Copy key' }).click();
    await secretDialog.getByText('Copied.').waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, shown, 'the clipboard holds the secret');
    await secretDialog.getByRole('button', { name: 'I have copied it' }).click();
    await secretDialog.waitFor({ state: 'hidden' });
    // Shown once: the list has only its prefix.
    assert.equal(await page.getByText(shown).count(), 0);

    // Call the relay with the copied key, as a client would.
    const requestIds = [];
    for (const stream of [false, true]) {
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${copied}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content: 'hello from the journey' }] }),
        signal: AbortSignal.timeout(WAIT_MS),
      });
      assert.equal(res.status, 200);
      await res.text();
      requestIds.push(res.headers.get('x-request-id'));
    }

    // The rows in the logs, with the totals bar.
    await goTo(page, problems, 'Logs');
    for (const id of requestIds) await page.locator(`tr[data-request-id="${id}"]`).waitFor();
    await page.locator(`tr[data-request-id="${requestIds[0]}"]`).getByRole('button', { name: 'Details' }).click();
    const detail = page.getByRole('dialog', { name: 'Log entry' });
    assert.equal(await detail.getByLabel('Request ID').inputValue(), requestIds[0]);
    await detail.getByRole('button', { name: 'Copy request ID' }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), requestIds[0]);
    await detail.getByRole('button', { name: 'Close' }).click();
    const requests = await value(page, 'total-requests');
    const quota = await value(page, 'total-quota');
    const tokens = await value(page, 'total-tokens');
    assert.ok(requests >= 2 && quota > 0 && tokens > 0, `totals ${requests} ${quota} ${tokens}`);

    // The CSV export of the same filter adds up to the totals bar.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
    const csv = await readFile(await download.path(), 'utf8');
    const [header, ...lines] = csv.trim().split('\n');
    const cols = header.split(',');
    const at = (name) => cols.indexOf(name);
    assert.ok(at('quota') >= 0 && at('type') >= 0 && at('request_id') >= 0, `CSV header: ${header}`);
    const rows = lines.map((l) => l.split(','));
    const consume = rows.filter((r) => r[at('type')] === '2' || r[at('type')] === 'consume');
    assert.equal(consume.length, requests, 'CSV rows = requests in the totals bar');
    assert.equal(consume.reduce((s, r) => s + Number(r[at('quota')]), 0), quota, 'CSV quota = totals bar');
    assert.equal(
      consume.reduce((s, r) => s + Number(r[at('prompt_tokens')]) + Number(r[at('completion_tokens')]), 0),
      tokens,
      'CSV tokens = totals bar',
    );
    for (const id of requestIds) assert.ok(csv.includes(id), `CSV has ${id}`);

    // Usage: the chart draws the calls; the totals match the logs page for the same period.
    await goTo(page, problems, 'Usage');
    const chart = page.getByTestId('usage-chart');
    await chart.locator('canvas').waitFor();
    assert.ok(Number(await chart.getAttribute('data-points')) >= 24, 'hourly buckets over 24 h');
    await page.getByTestId('usage-totals').locator('tr', { hasText: 'gpt-4o-mini' }).waitFor();
    assert.equal(await value(page, 'usage-total-requests'), requests, 'usage total = logs total');
    assert.equal(await value(page, 'usage-total-spend'), quota, 'usage spend = logs quota');
    // The daily view over 30 days counts the same calls.
    await page.getByLabel('Period', { exact: true }).selectOption('30d');
    await settle(page, problems);
    await waitForText(page, '[data-testid=usage-zone]', /^UTC \(UTC\+00:00\)$/);
    assert.equal(await value(page, 'usage-total-requests'), requests, 'daily total = logs total');

    // Dashboard: the figures and the charts include the calls.
    await goTo(page, problems, 'Dashboard');
    await page.getByTestId('dash-spend-chart').locator('canvas').waitFor();
    assert.equal(await value(page, 'dash-requests'), requests);
    assert.equal(await value(page, 'dash-spend'), quota);
    await page.getByTestId('dash-top-models').locator('tr', { hasText: 'gpt-4o-mini' }).waitFor();
    await page.getByTestId('dash-top-keys').locator('tr', { hasText: 'journey' }).waitFor();
    await page.getByTestId('dash-channels').locator('tr', { hasText: 'mock upstream' }).waitFor();
    assertClean(problems, 'journey');
  });

  test('playground: a streamed answer with time to first token, tokens and cost, charged and logged', { timeout: T }, async (t) => {
    const base = ctx.sluice.baseUrl;
    const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base });
    await signIn(page, base, 'root', NEW_ROOT_PASSWORD, { problems });
    await goTo(page, problems, 'Playground');
    await page.getByLabel('Model', { exact: true }).selectOption('gpt-4o-mini');
    assert.equal(await page.getByLabel('Stream the answer').isChecked(), true);
    await page.getByLabel('Message', { exact: true }).fill('Say hello');
    await page.getByRole('button', { name: 'Send' }).click();
    const answer = page.locator('.msg.assistant');
    await waitForText(page, '.msg.assistant', /hello/);
    await waitForText(page, '[data-testid=pg-tokens]', /^[1-9]/);
    await waitForText(page, '[data-testid=pg-cost]', /\d/);
    await waitForText(page, '[data-testid=pg-ttft]', /\d/);
    assert.equal(await answer.count(), 1);
    const logs = await call(base, 'GET', '/api/log?token_name=playground', { token: ctx.token });
    assert.equal(logs.status, 200);
    assert.equal(logs.json.items.length, 1, 'one playground row');
    assert.equal(logs.json.items[0].model, 'gpt-4o-mini');
    assert.ok(logs.json.items[0].quota > 0, 'charged');
    assertClean(problems, 'playground');
  });

  test('settings: one save checks every field, shows each refusal at its field, and stores nothing', { timeout: T }, async (t) => {
    const base = ctx.sluice.baseUrl;
    const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base });
    await signIn(page, base, 'root', NEW_ROOT_PASSWORD, { problems });
    await goTo(page, problems, 'Settings');
    const field = (name) => page.locator(`[data-option="${name}"]`);
    // Every number and list states its bounds, the options added last too.
    assert.match(await field('keys.max_per_user').locator('.hint').textContent(), /Allowed: 0 to 1,000,000\./);
    assert.equal(await field('keys.max_per_user').locator('input').getAttribute('max'), '1000000');
    assert.match(await field('cors.max_age_secs').locator('.hint').textContent(), /Allowed: 0 to 86,400\./);
    assert.match(await field('cors.allowed_origins').locator('.hint').textContent(), /Up to 100 items\./);
    // The form's own checks (from the metadata): a number under its minimum, JSON that is not,
    // a list longer than allowed.
    await field('log.retention_days').locator('input').fill('-5');
    await field('pricing.group_ratio').locator('textarea').fill('{"default": ');
    const origins = Array.from({ length: 101 }, (_, i) => `https://a${i}.example.com`);
    await field('cors.allowed_origins').locator('textarea').fill(JSON.stringify(origins));
    await page.getByRole('button', { name: 'Save changes' }).click();
    await field('log.retention_days').locator('.field-error').waitFor();
    await field('pricing.group_ratio').locator('.field-error').waitFor();
    assert.equal(await field('cors.allowed_origins').locator('.field-error').textContent(), 'At most 100 items.');
    await field('cors.allowed_origins').locator('textarea').fill('[]');
    assert.equal(await field('log.retention_days').locator('input').getAttribute('aria-invalid'), 'true');
    // Modules are in name order: cors comes before log.
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'opt-cors-allowed_origins', 'focus moves to the first error');

    // Values the metadata allows but the server refuses: each reason at its own field.
    await field('log.retention_days').locator('input').fill('30');
    await field('pricing.group_ratio').locator('textarea').fill('{"default": 1}');
    await field('channel.disable_statuses').locator('textarea').fill('[401, 429]');
    await field('smtp.host').locator('input').fill('bad host name!');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByTestId('settings-errors').waitFor();
    await field('channel.disable_statuses').locator('.field-error').waitFor();
    await field('smtp.host').locator('.field-error').waitFor();
    assert.equal(await field('log.retention_days').locator('.field-error').count(), 0);
    // Nothing was stored: not even the valid retention change sent with them.
    const opts = await call(base, 'GET', '/api/option', { token: ctx.token });
    assert.equal(opts.json.find((o) => o.name === 'log.retention_days').value, 90);

    // Fixed, the same save goes through.
    await field('channel.disable_statuses').locator('textarea').fill('[401, 403]');
    await field('smtp.host').locator('input').fill('');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByTestId('settings-saved').waitFor();
    const after = await call(base, 'GET', '/api/option', { token: ctx.token });
    assert.equal(after.json.find((o) => o.name === 'log.retention_days').value, 30);
    // 400s were the expected refusals.
    assertClean(problems, 'settings', { allowHttp: ['/api/option'] });
  });

  test('a plain user sees no admin pages; the server refuses them anyway', { timeout: T }, async (t) => {
    const base = ctx.sluice.baseUrl;
    const made = await call(base, 'POST', '/api/users', { token: ctx.token, body: { username: 'ann', password: 'ann-password-1', quota: 1_000_000 } });
    assert.equal(made.status, 201);
    const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base });
    await signIn(page, base, 'ann', 'ann-password-1', { problems });
    await settle(page, problems);
    const links = await page.locator('nav.nav a').allTextContents();
    assert.deepEqual(links, ['Dashboard', 'API keys', 'Logs', 'Usage', 'Models', 'Playground', 'Account']);
    await page.goto(`${base}/channels`);
    await settle(page, problems);
    assert.equal(await page.locator('h1').textContent(), 'For administrators');
    assert.equal(await page.evaluate(async () => (await fetch('api/channels')).status), 403);
    assertClean(problems, 'plain user', { allowHttp: ['/api/channels'] });
  });

  test('channels: an Azure channel with two keys, made in the form, shows its kind and key count and passes its test with both', { timeout: T }, async (t) => {
    const base = ctx.sluice.baseUrl;
    const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base });
    await signIn(page, base, 'root', NEW_ROOT_PASSWORD, { problems });
    await goTo(page, problems, 'Channels');
    await page.getByRole('button', { name: 'New channel' }).click();
    const form = page.getByRole('dialog', { name: 'New channel' });
    await form.getByLabel('Name', { exact: true }).fill('azure east');
    await form.getByLabel('Kind').selectOption('azure');
    // The mock's Azure mode is its root: the resource endpoint.
    await form.getByLabel('Base URL').fill(ctx.mock.baseUrl);
    await form.getByLabel('API version').fill('2025-04-01-preview');
    await form.getByLabel('Upstream API keys').fill('azure-key-one-0001\n azure-key-two-0002 \n');
    await form.getByLabel('Models', { exact: true }).fill('gpt-4o-mini');
    await form.getByRole('button', { name: 'Create channel' }).click();
    await form.waitFor({ state: 'hidden' });
    const row = page.locator('tr', { hasText: 'azure east' });
    await row.getByText('Azure OpenAI').waitFor();
    await row.getByText('2 keys').waitFor();
    const made = (await call(base, 'GET', '/api/channels', { token: ctx.token })).json.find((c) => c.name === 'azure east');
    assert.deepEqual(made.settings, { api_version: '2025-04-01-preview' });
    assert.deepEqual(made.keys.map((k) => k.fingerprint), ['…0001', '…0002']);
    await row.getByRole('button', { name: 'Test: azure east' }).click();
    await row.getByText('Passed').waitFor();
    // Neither key is ever on the page.
    const html = await page.content();
    assert.ok(!html.includes('azure-key-one-0001') && !html.includes('azure-key-two-0002'));
    assertClean(problems, 'azure channel');
  });

  test('every page, in English and Chinese, light and dark', { timeout: 10 * T }, async (t) => {
    await everyPage(ctx, t, NEW_ROOT_PASSWORD);
  });

  test('under a reverse proxy at /llm/ every page, asset and API call works', { timeout: 2 * T }, async (t) => {
    await proxyUnderPrefix(ctx, t, NEW_ROOT_PASSWORD);
  });

  test('path traversal is rejected with 404', { timeout: T }, async () => {
    for (const rawPath of ['/..%2f..%2fetc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/assets/..%2f..%2f..%2f..%2fetc%2fpasswd']) {
      const { status, body } = await rawGet(ctx.sluice.baseUrl, rawPath);
      assert.equal(status, 404, `GET ${rawPath}`);
      assert.doesNotMatch(body, /root:.*:0:0:/, `GET ${rawPath} leaked /etc/passwd`);
    }
  });

  test('channels: a Gemini channel made in the form passes its test (Gemini\'s route and key header at the mock)', { timeout: T }, async (t) => {
    const base = ctx.sluice.baseUrl;
    const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base });
    await signIn(page, base, 'root', NEW_ROOT_PASSWORD, { problems });
    await goTo(page, problems, 'Channels');
    await page.getByRole('button', { name: 'New channel' }).click();
    const form = page.getByRole('dialog', { name: 'New channel' });
    await form.getByLabel('Name', { exact: true }).fill('gemini');
    await form.getByLabel('Kind').selectOption('gemini');
    // The form says where Gemini's base URL stops, and the mock's gemini mode is at its root.
    await form.getByPlaceholder('https://generativelanguage.googleapis.com').waitFor();
    await form.getByLabel('Base URL').fill(ctx.mock.baseUrl);
    await form.getByLabel('Upstream API keys').fill('goog-e2e-key-4321');
    await form.getByLabel('Models', { exact: true }).fill('gemini-2.5-flash');
    await form.getByRole('button', { name: 'Create channel' }).click();
    await form.waitFor({ state: 'hidden' });
    const made = (await call(base, 'GET', '/api/channels', { token: ctx.token })).json.find((c) => c.name === 'gemini');
    assert.equal(made.kind, 'gemini');
    const row = page.locator('tr', { hasText: 'gemini' }).first();
    await row.getByRole('button', { name: 'Test: gemini' }).click();
    await row.getByText('Passed').waitFor();
    assert.ok(!(await page.content()).includes('goog-e2e-key-4321'));
    assertClean(problems, 'gemini channel');
  });

  test('channels: the Responses API option in the form (en + zh-CN) decides whether a Responses call is converted to chat', { timeout: T }, async (t) => {
    await responsesOption(ctx, t, NEW_ROOT_PASSWORD);
  });

  test('channels: priority and weight edited in the row, the model mapping editor, test all', { timeout: T }, async (t) => {
    await channelRows(ctx, t, NEW_ROOT_PASSWORD);
  });

  test('keys: a key for another user with quota, expiry, allow-list and limits, stored and enforced; owner filter; disable, edit, delete with confirmation', { timeout: T }, async (t) => {
    await keysPage(ctx, t, NEW_ROOT_PASSWORD);
  });

  test('users: server-side search and paging, create with a balance, edit role/group/enabled, balance change as a top-up row, usage, delete with confirmation', { timeout: T }, async (t) => {
    await usersPage(ctx, t, NEW_ROOT_PASSWORD);
  });

  test('logs: model, key and request id filters, sort, cursor paging both ways, and the CSV export of exactly that filter = the totals bar', { timeout: 2 * T }, async (t) => {
    await logsFiltered(ctx, t, NEW_ROOT_PASSWORD);
  });

  test('usage: split by model, key, channel and user, each adding up to the same total', { timeout: T }, async (t) => {
    await usageSplits(ctx, t, NEW_ROOT_PASSWORD);
  });

  test('usage: a key made after 100 others is named, split by key', { timeout: T }, async (t) => {
    await usageNamesPastTheHundredth(ctx, t, NEW_ROOT_PASSWORD);
  });

  test('keys: with more than 100 users, a later user is named as owner, found by the owner filter and given a key', { timeout: T }, async (t) => {
    await keysOwnersPastTheHundredth(ctx, t, NEW_ROOT_PASSWORD);
  });

  test('operations: backup made and downloaded, hot copy, reconcile, log level, a profile shown as a flame graph, old rows deleted after confirming', { timeout: T }, async (t) => {
    await opsPage(ctx, t, NEW_ROOT_PASSWORD);
  });

  test('the language and theme controls switch the page at once and are remembered', { timeout: T }, async (t) => {
    await languageAndTheme(ctx, t, NEW_ROOT_PASSWORD);
  });

  test('settings: export downloads the server\'s document; an import through the file field changes what differs; a broken file is refused', { timeout: T }, async (t) => {
    await settingsExportImport(ctx, t, NEW_ROOT_PASSWORD);
  });

  test('models: a priced model with its input and output price per 1M tokens in the display currency, in English and Chinese', { timeout: T }, async (t) => {
    await modelsPage(ctx, t, NEW_ROOT_PASSWORD);
  });

  test('account: notifications by webhook with a secret and a threshold, the test delivered to a receiver and in the history', { timeout: T }, async (t) => {
    await notifications(ctx, t, NEW_ROOT_PASSWORD);
  });

  test('account: an access token made, used and revoked', { timeout: T }, async (t) => {
    await accessToken(ctx, t, NEW_ROOT_PASSWORD);
    // One token per user: the one this file's set-up made is replaced; make the next one.
    ctx.token = await adminToken(ctx.sluice.baseUrl, 'root', NEW_ROOT_PASSWORD);
  });
});
