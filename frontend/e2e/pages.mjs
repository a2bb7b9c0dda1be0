// Every page in both languages and both themes: no untranslated text in Chinese, no console
// error, no failed request, axe-core finds nothing critical or serious, the keyboard reaches every
// control, one <h1>; and a screenshot of each to docs/screenshots/.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { assertOneH1, axeViolations, unreachableByKeyboard, untranslatedWords } from './checks.mjs';
import { assertClean, call, openPage, REPO, resetProblems, settle, signIn, WAIT_MS } from './harness.mjs';

export const PAGES = [
  { name: 'dashboard', path: '' },
  { name: 'keys', path: 'keys' },
  { name: 'logs', path: 'logs' },
  { name: 'usage', path: 'usage' },
  { name: 'models', path: 'models' },
  { name: 'playground', path: 'playground' },
  { name: 'channels', path: 'channels' },
  { name: 'users', path: 'users' },
  { name: 'settings', path: 'settings' },
  { name: 'ops', path: 'ops' },
  { name: 'account', path: 'account' },
];

const SHOTS = path.join(REPO, 'docs/screenshots');

/** Charts draw after uPlot loads: wait until every chart on the page has its canvas. */
async function chartsDrawn(page) {
  await page.waitForFunction(() => [...document.querySelectorAll('figure.chart')].every((f) => f.querySelector('canvas') || f.querySelector('.alert')), null, {
    timeout: WAIT_MS,
  });
}

/** A little more to show: another model, a backup, a CPU profile, a second key. */
async function moreData(ctx) {
  const base = ctx.sluice.baseUrl;
  const token = ctx.token;
  // The journey made a channel and funded root; run alone, this test does it itself.
  const channels = await call(base, 'GET', '/api/channels', { token });
  if (!channels.json.some((c) => c.models.includes('gpt-4o'))) {
    const c = await call(base, 'POST', '/api/channels', { token, body: { name: 'mock upstream', base_url: `${ctx.mock.baseUrl}/v1`, api_key: 'mock-key', models: ['gpt-4o-mini', 'gpt-4o'] } });
    assert.equal(c.status, 201, c.text);
    assert.equal((await call(base, 'PATCH', '/api/users/1', { token, body: { quota: 50_000_000 } })).status, 200);
  }
  const key = await call(base, 'POST', '/api/keys', { token, body: { name: 'batch jobs', quota: 2_000_000, rpm_limit: 60 } });
  assert.equal(key.status, 201);
  for (const model of ['gpt-4o', 'gpt-4o', 'gpt-4o-mini']) {
    const r = await call(base, 'POST', '/v1/chat/completions', { token: key.json.key, body: { model, messages: [{ role: 'user', content: 'hi' }] } });
    assert.equal(r.status, 200, r.text);
  }
  assert.equal((await call(base, 'POST', '/api/backups', { token })).status, 201);
  const prof = await call(base, 'POST', '/api/profiles', { token, body: { seconds: 1 } });
  assert.equal(prof.status, 201, prof.text);
}

export async function everyPage(ctx, t, password) {
  const base = ctx.sluice.baseUrl;
  const write = process.env.SCREENSHOTS !== '0';
  if (write) await mkdir(SHOTS, { recursive: true });
  await moreData(ctx);
  const failures = [];
  const check = async (where, fn) => {
    try {
      await fn();
    } catch (e) {
      failures.push(`${where}: ${e.message}`);
    }
  };

  for (const lang of ['en', 'zh-CN']) {
    for (const scheme of ['light', 'dark']) {
      const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base, colorScheme: scheme, locale: lang === 'en' ? 'en-US' : 'zh-CN', timezoneId: 'UTC' });
      const full = scheme === 'light';
      const shot = async (name) => write && page.screenshot({ path: path.join(SHOTS, `${name}-${lang}-${scheme}.png`) });

      // The sign-in page (signed out: its check of /api/me answers 401).
      await page.goto(`${base}/?lang=${lang}`);
      await settle(page, problems);
      const where0 = `sign-in ${lang} ${scheme}`;
      await check(where0, () => assertOneH1(page, where0));
      if (lang !== 'en') await check(where0, async () => assert.deepEqual(await untranslatedWords(page), [], 'untranslated'));
      if (full || lang === 'en') await check(where0, async () => assert.deepEqual(await axeViolations(page), [], 'axe'));
      if (full && lang === 'en') await check(where0, async () => assert.deepEqual(await unreachableByKeyboard(page), [], 'keyboard'));
      await shot('signin');
      await check(where0, () => assertClean(problems, where0, { allowHttp: ['/api/me'] }));

      await signIn(page, base, 'root', password, { problems });
      for (const p of PAGES) {
        const where = `${p.name} ${lang} ${scheme}`;
        resetProblems(problems);
        await page.goto(`${base}/${p.path}`);
        await settle(page, problems);
        await chartsDrawn(page);
        await check(where, () => assertOneH1(page, where));
        if (lang !== 'en') await check(where, async () => assert.deepEqual(await untranslatedWords(page), [], 'untranslated'));
        if (full || lang === 'en') await check(where, async () => assert.deepEqual(await axeViolations(page), [], 'axe'));
        if (full && lang === 'en') await check(where, async () => assert.deepEqual(await unreachableByKeyboard(page), [], 'keyboard'));
        await page.evaluate(() => {
          document.activeElement?.blur?.();
          window.scrollTo(0, 0);
        });
        await shot(p.name);
        await check(where, () => assertClean(problems, where));
      }
    }
  }
  assert.deepEqual(failures, [], `\n${failures.join('\n')}`);
}
