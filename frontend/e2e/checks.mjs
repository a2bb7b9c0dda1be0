// Checks run on every page: untranslated text, axe-core, keyboard reach, one <h1>.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const AXE_PATH = require.resolve('axe-core/axe.min.js');

/**
 * Words allowed in Chinese pages: proper names, protocols and units that stay in Latin letters
 * in Chinese technical writing. Data (names, models, ids, URLs) is marked `translate="no"` by the
 * app and collected from the page itself.
 */
export const ALLOW = new Set(
  [
    'sluice', 'API', 'APIs', 'URL', 'ID', 'RPM', 'TPM', 'TTFT', 'TTFB', 'HTTP', 'HTTPS', 'JSON', 'CSV', 'SMTP', 'USD', 'CNY',
    'US', 'KiB', 'MiB', 'GiB', 'TiB', 'OpenAI', 'Webhook', 'Bark', 'Gotify', 'pprof', 'DEBUG', 'UTC', 'GMT', 'SQLite',
    'tokens', 'token', 'Token', 'Tokens', 'Ctrl', 'Enter', 'English', 'http', 'https', 'CPU', 'SSE', 'IANA', 'TLS', 'STARTTLS', 'Bearer', 'CORS',
    'Anthropic', 'Azure', 'Google', 'Gemini', 'SDK', 'SDKs', 'Responses', 'vLLM', 'Ollama',
  ].map((w) => w.toLowerCase()),
);

/**
 * Latin-letter words on the page outside `translate="no"` (text nodes, and the placeholder,
 * aria-label, title and alt attributes) that are neither allowed nor data shown elsewhere.
 */
export async function untranslatedWords(page) {
  return page.evaluate((allow) => {
    const allowSet = new Set(allow);
    const isData = (el) => !!el?.closest('[translate="no"]');
    const split = (s) =>
      s
        .split(/[\s,;:()（）「」“”"'‘’·、。，：；！？!?|[\]{}<>=+*×…–—]+/)
        .map((w) => w.replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, ''))
        .filter(Boolean);
    const dataWords = new Set();
    document.querySelectorAll('[translate="no"]').forEach((el) => {
      for (const w of split(el.textContent ?? '')) dataWords.add(w.toLowerCase());
      for (const a of ['value', 'title']) if (el.getAttribute(a)) for (const w of split(el.getAttribute(a))) dataWords.add(w.toLowerCase());
    });
    // A word of letters only; tokens with digits, dots or slashes are ids, versions, URLs, units.
    const suspicious = (w) => /^[A-Za-z]{2,}$/.test(w) && !allowSet.has(w.toLowerCase()) && !dataWords.has(w.toLowerCase());
    const found = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || isData(el) || el.closest('script,style,noscript')) continue;
      for (const w of split(n.textContent ?? '')) if (suspicious(w)) found.push(`${w} in "${(n.textContent ?? '').trim().slice(0, 80)}"`);
    }
    for (const el of document.body.querySelectorAll('[placeholder],[aria-label],[title],[alt]')) {
      if (isData(el)) continue;
      for (const a of ['placeholder', 'aria-label', 'title', 'alt']) {
        const v = el.getAttribute(a);
        if (!v) continue;
        for (const w of split(v)) if (suspicious(w)) found.push(`${w} in ${a}="${v.slice(0, 80)}"`);
      }
    }
    const title = document.title;
    for (const w of split(title)) if (suspicious(w)) found.push(`${w} in <title>${title}`);
    return found;
  }, [...ALLOW]);
}

/** axe-core's critical and serious violations on the page as it is now. */
export async function axeViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.addScriptTag({ path: AXE_PATH });
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  return violations.filter((v) => v.impact === 'critical' || v.impact === 'serious');
}

/**
 * Tabs through the page from the top and returns the interactive elements that never got focus.
 * Radios count once per group (arrow keys move within one).
 */
export async function unreachableByKeyboard(page) {
  const total = await page.evaluate(() => {
    const sel = 'a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), textarea:not([disabled]), summary, iframe:not([tabindex="-1"]), [tabindex]:not([tabindex="-1"])';
    const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    let i = 0;
    const seenRadio = new Set();
    for (const el of document.querySelectorAll(sel)) {
      el.removeAttribute('data-kb');
      if (!visible(el) || el.closest('[inert]')) continue;
      if (el.matches('input[type=radio]')) {
        if (seenRadio.has(el.name)) {
          el.setAttribute('data-kb-radio', el.name);
          continue;
        }
        seenRadio.add(el.name);
      }
      el.setAttribute('data-kb', String(i++));
    }
    document.activeElement?.blur?.();
    window.scrollTo(0, 0);
    return i;
  });
  const reached = new Set();
  // Each control takes one Tab; the margin covers the browser's own stops (the address bar is
  // not in a headless page, but a focused iframe's document may take extra ones).
  for (let n = 0; n < total + 25 && reached.size < total; n++) {
    await page.keyboard.press('Tab');
    const id = await page.evaluate(() => {
      let el = document.activeElement;
      if (el?.matches('input[type=radio]') && !el.hasAttribute('data-kb')) {
        el = document.querySelector(`input[type=radio][name="${el.name}"][data-kb]`);
      }
      return el?.getAttribute('data-kb') ?? null;
    });
    if (id !== null) reached.add(id);
  }
  return page.evaluate((ids) => {
    const missing = [];
    for (const el of document.querySelectorAll('[data-kb]')) {
      if (!ids.includes(el.getAttribute('data-kb'))) missing.push(el.outerHTML.slice(0, 120));
    }
    return missing;
  }, [...reached]);
}

export async function assertOneH1(page, where) {
  const h1 = await page.locator('h1').count();
  assert.equal(h1, 1, `${where}: expected one <h1>, found ${h1}`);
}
