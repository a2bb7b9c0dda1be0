// Translations without a library: `en.ts` is the source and `zh-CN.ts` is typed `typeof en`,
// so a missing or misspelt key fails `tsc`. Components read `t()` during render; the signal
// re-renders them when the language changes. Chinese is loaded only when chosen.

import { signal } from '@preact/signals';
import en from '../i18n/en';

export type Messages = typeof en;
export type Lang = 'en' | 'zh-CN';
export const LANGS: readonly Lang[] = ['en', 'zh-CN'];

const STORAGE_KEY = 'sluice.lang';

export const lang = signal<Lang>('en');
const messages = signal<Messages>(en);

/** The messages of the current language (subscribes the rendering component). */
export function t(): Messages {
  return messages.value;
}

function parse(value: string | null | undefined): Lang | null {
  if (!value) return null;
  const v = value.toLowerCase();
  if (v === 'en' || v.startsWith('en-')) return 'en';
  if (v === 'zh' || v.startsWith('zh-')) return 'zh-CN';
  return null;
}

async function load(l: Lang): Promise<Messages> {
  if (l === 'zh-CN') return (await import('../i18n/zh-CN')).default;
  return en;
}

/** Switches the language; `remember` saves the choice for the next visit. */
export async function setLang(l: Lang, remember = true): Promise<void> {
  const m = await load(l);
  messages.value = m;
  lang.value = l;
  document.documentElement.lang = l;
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, l);
    } catch {
      /* storage may be off: the choice lasts for this page */
    }
  }
}

/** `?lang=`, then the saved choice, then the browser's languages, then English. */
export function initialLang(): Lang {
  const fromQuery = parse(new URLSearchParams(location.search).get('lang'));
  if (fromQuery) return fromQuery;
  let saved: string | null = null;
  try {
    saved = localStorage.getItem(STORAGE_KEY);
  } catch {
    /* no storage */
  }
  const fromSaved = parse(saved);
  if (fromSaved) return fromSaved;
  for (const l of navigator.languages ?? [navigator.language]) {
    const p = parse(l);
    if (p) return p;
  }
  return 'en';
}

export async function initLang(): Promise<void> {
  const l = initialLang();
  // A `?lang=` link chooses for this visit and is remembered, like the switcher.
  await setLang(l, new URLSearchParams(location.search).has('lang'));
}
