// The language and theme controls in the header: each switches the page at once and is
// remembered across a reload; "System theme" follows the browser's scheme again.

import assert from 'node:assert/strict';
import { assertClean, openPage, signIn } from './harness.mjs';

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
