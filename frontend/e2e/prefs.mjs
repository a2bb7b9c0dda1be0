// The language and theme controls in the header: each switches the page at once and is
// remembered across a reload; "System theme" follows the browser's scheme again. And the
// settings page's export and import.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { assertClean, call, openPage, signIn } from './harness.mjs';

export async function languageAndTheme(ctx, t, password) {
  const base = ctx.sluice.baseUrl;
  // A browser that asks for English and a light scheme.
  const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base, colorScheme: 'light', locale: 'en-US' });
  await signIn(page, base, 'root', password, { path: 'keys', problems });
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const lightBg = await background();

  await page.getByLabel('Theme').selectOption('dark');
  assert.equal(await page.evaluate(() => document.documentElement.getAttribute('data-theme')), 'dark');
  const darkBg = await background();
  assert.notEqual(darkBg, lightBg, 'the page turns dark');
  await page.getByLabel('Language').selectOption('zh-CN');
  await page.locator('h1', { hasText: 'API 密钥' }).waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');

  // Remembered: a reload without ?lang= stays Chinese and dark.
  await page.reload();
  await page.locator('h1', { hasText: 'API 密钥' }).waitFor();
  assert.equal(await background(), darkBg);

  // Back to following the system (light here), and to English.
  await page.getByLabel('主题').selectOption('system');
  assert.equal(await page.evaluate(() => document.documentElement.getAttribute('data-theme')), null);
  assert.equal(await background(), lightBg);
  await page.getByLabel('语言').selectOption('en');
  await page.locator('h1', { hasText: 'API keys' }).waitFor();
  await page.reload();
  await page.locator('h1', { hasText: 'API keys' }).waitFor();
  assert.equal(await background(), lightBg);
  assertClean(problems, 'language and theme');
}

/** Settings export and import in the page: the exported file is the server's document; a changed
 * copy imported through the file field changes that option only, and a broken file is refused
 * at the field without a request. */
export async function settingsExportImport(ctx, t, password) {
  const base = ctx.sluice.baseUrl;
  const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base });
  await signIn(page, base, 'root', password, { path: 'settings', problems });
  await page.getByRole('link', { name: 'Export settings' }).waitFor();
  const [d] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export settings' }).click()]);
  const doc = JSON.parse(await readFile(await d.path(), 'utf8'));
  const served = await call(base, 'GET', '/api/option/export', { token: ctx.token });
  assert.deepEqual(doc, served.json, 'the file is the export document');
  const days = doc['log.retention_days'];
  assert.equal(typeof days, 'number');

  const file = page.getByLabel('Settings file (JSON, from Export)');
  await file.setInputFiles({ name: 'broken.json', mimeType: 'application/json', buffer: Buffer.from('{"log.retention_days": ') });
  await page.locator('.field-error', { hasText: /JSON/ }).waitFor();
  const changed = { ...doc, 'log.retention_days': days + 7 };
  await file.setInputFiles({ name: 'sluice-options.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(changed)) });
  await page.getByRole('status').filter({ hasText: 'Imported; 1 settings changed.' }).waitFor();
  const after = await call(base, 'GET', '/api/option/export', { token: ctx.token });
  assert.deepEqual(after.json, changed);
  // Put it back for the tests after this one.
  await file.setInputFiles({ name: 'sluice-options.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(doc)) });
  await page.getByRole('status').filter({ hasText: 'Imported; 1 settings changed.' }).waitFor();
  assertClean(problems, 'settings export and import');
}

/** The models page: a priced model of the caller's group with its input and output price per 1M
 * tokens in the display currency (ratio 2 and output ratio 3 at $2 per 1M for ratio 1: $4 and
 * $12), in English and Chinese. */
export async function modelsPage(ctx, t, password) {
  const base = ctx.sluice.baseUrl;
  const token = ctx.token;
  const ch = await call(base, 'POST', '/api/channels', { token, body: { name: 'models page', base_url: `${ctx.mock.baseUrl}/v1`, api_key: 'mock-key', models: ['mp-model'] } });
  assert.equal(ch.status, 201, ch.text);
  const opts = (await call(base, 'GET', '/api/option', { token })).json;
  const get = (name) => ({ ...(opts.find((o) => o.name === name)?.value ?? {}) });
  const body = { 'pricing.model_ratio': { ...get('pricing.model_ratio'), 'mp-model': 2 }, 'pricing.completion_ratio': { ...get('pricing.completion_ratio'), 'mp-model': 3 } };
  assert.equal((await call(base, 'PUT', '/api/option', { token, body })).status, 200);
  const listed = (await call(base, 'GET', '/api/models', { token })).json.items.find((m) => m.model === 'mp-model');
  assert.deepEqual([listed.input_per_1m.amount, listed.output_per_1m.amount, listed.input_per_1m.currency], [4, 12, 'USD']);
  for (const [lang, input, output] of [
    ['en', /^\$4(\.0+)?$/, /^\$12(\.0+)?$/],
    ['zh-CN', /^US\$4(\.0+)?$/, /^US\$12(\.0+)?$/],
  ]) {
    const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base, locale: lang === 'en' ? 'en-US' : 'zh-CN' });
    await signIn(page, base, 'root', password, { path: `models?lang=${lang}`, problems });
    const row = page.getByTestId('models-table').locator('tr', { hasText: 'mp-model' });
    await row.waitFor();
    const cells = (await row.locator('td').allTextContents()).map((s) => s.trim());
    assert.match(cells[1], input, `${lang}: ${cells}`);
    assert.match(cells[2], output, `${lang}: ${cells}`);
    assertClean(problems, `models ${lang}`);
  }
}
