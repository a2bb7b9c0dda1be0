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
