// Numbers, money, sizes, dates and durations through Intl, in the current language.
// Every figure the console shows goes through here, so each carries its unit.

import { signal } from '@preact/signals';
import { lang, t } from './i18n';
import type { Money } from './types';

const cache = new Map<string, Intl.NumberFormat | Intl.DateTimeFormat>();

function nf(opts: Intl.NumberFormatOptions): Intl.NumberFormat {
  const key = `n|${lang.value}|${JSON.stringify(opts)}`;
  let f = cache.get(key) as Intl.NumberFormat | undefined;
  if (!f) {
    f = new Intl.NumberFormat(lang.value, opts);
    cache.set(key, f);
  }
  return f;
}

function df(opts: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `d|${lang.value}|${JSON.stringify(opts)}`;
  let f = cache.get(key) as Intl.DateTimeFormat | undefined;
  if (!f) {
    f = new Intl.DateTimeFormat(lang.value, opts);
    cache.set(key, f);
  }
  return f;
}

export function num(n: number | null | undefined, maxFraction = 0): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return nf({ maximumFractionDigits: maxFraction }).format(n);
}

export function pct(fraction: number | null | undefined, maxFraction = 1): string {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return '–';
  return nf({ style: 'percent', maximumFractionDigits: maxFraction }).format(fraction);
}

export function ms(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  return nf({ style: 'unit', unit: 'millisecond', unitDisplay: 'short', maximumFractionDigits: n < 10 ? 1 : 0 }).format(n);
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${num(v, i === 0 ? 0 : 1)} ${units[i]}`;
}

/** A duration in seconds, in its two largest units (`3 d 4 h`, `3天4小时`). */
export function duration(totalSecs: number): string {
  const s = Math.max(0, Math.floor(totalSecs));
  const parts: [number, string][] = [
    [Math.floor(s / 86_400), 'day'],
    [Math.floor((s % 86_400) / 3_600), 'hour'],
    [Math.floor((s % 3_600) / 60), 'minute'],
    [s % 60, 'second'],
  ];
  const first = parts.findIndex(([v]) => v > 0);
  const shown = first < 0 ? [parts[3]!] : parts.slice(first, first + 2).filter(([v], i) => i === 0 || v > 0);
  return shown.map(([v, unit]) => nf({ style: 'unit', unit, unitDisplay: 'narrow' }).format(v)).join(' ');
}

/** Unix seconds as a local date and time. */
export function dateTime(unix: number | null | undefined): string {
  if (!unix) return '–';
  return df({ dateStyle: 'medium', timeStyle: 'medium' }).format(new Date(unix * 1000));
}

export function date(unix: number | null | undefined): string {
  if (!unix) return '–';
  return df({ dateStyle: 'medium' }).format(new Date(unix * 1000));
}

/** A chart axis label: hour and minute for hourly buckets, month and day for daily ones. */
export function bucketLabel(unix: number, hourly: boolean): string {
  return hourly
    ? df({ hour: '2-digit', minute: '2-digit' }).format(new Date(unix * 1000))
    : df({ month: 'short', day: 'numeric' }).format(new Date(unix * 1000));
}

/** The browser's IANA zone, e.g. `Asia/Shanghai`. */
export function timeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** Minutes east of UTC now (UTC+8 → 480). */
export function tzOffsetMinutes(at: Date = new Date()): number {
  return -at.getTimezoneOffset();
}

/** `UTC+08:00`. */
export function utcOffsetLabel(minutes: number): string {
  const sign = minutes < 0 ? '−' : '+';
  const a = Math.abs(minutes);
  return `UTC${sign}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

/** `Asia/Shanghai (UTC+08:00)`: said beside every time and bucket. */
export function zoneLabel(): string {
  return `${timeZone()} (${utcOffsetLabel(tzOffsetMinutes())})`;
}

// ---- money --------------------------------------------------------------------------------

/**
 * The display currency, learned from the server's `*_display` fields: the console shows money
 * as the server converts it, and converts raw unit sums (chart totals) at the same rate.
 */
export const display = signal<{ currency: Money['currency']; symbol: string; perUnit: number | null }>({
  currency: 'USD',
  symbol: '$',
  perUnit: 1 / 500_000,
});

const FIXED_RATE: Partial<Record<Money['currency'], number>> = { USD: 1 / 500_000, TOKENS: 1 };

/** Notes the display currency from an amount the server converted. */
export function learnDisplay(units: number, m: Money | undefined | null): void {
  if (!m) return;
  const cur = display.value;
  const fixed = FIXED_RATE[m.currency];
  const perUnit = fixed ?? (units > 0 ? m.amount / units : cur.currency === m.currency ? cur.perUnit : null);
  if (cur.currency !== m.currency || cur.symbol !== m.symbol || (fixed === undefined && units >= 1_000 && perUnit !== cur.perUnit)) {
    display.value = { currency: m.currency, symbol: m.symbol, perUnit };
  }
}

function amountText(amount: number, currency: Money['currency'], symbol: string): string {
  const digits = Math.abs(amount) > 0 && Math.abs(amount) < 0.01 ? 6 : 2;
  switch (currency) {
    case 'USD':
    case 'CNY':
      return nf({ style: 'currency', currency, minimumFractionDigits: 2, maximumFractionDigits: digits }).format(amount);
    case 'CUSTOM':
      return `${symbol}${nf({ minimumFractionDigits: 2, maximumFractionDigits: digits }).format(amount)}`;
    case 'TOKENS':
      return `${num(amount)} ${t().units.quotaUnits}`;
  }
}

/** An amount the server converted (`quota_display`), in this language. */
export function money(m: Money | undefined | null): string {
  if (!m) return '–';
  return amountText(m.amount, m.currency, m.symbol);
}

/** Raw quota units in the display currency (for sums the console adds up itself). */
export function moneyOfUnits(units: number): string {
  const d = display.value;
  if (d.perUnit === null) return `${num(units)} ${t().units.quotaUnits}`;
  return amountText(Math.round(units * d.perUnit * 1e6) / 1e6, d.currency, d.symbol);
}

/** Amount in the display currency (a number, for charts). */
export function amountOfUnits(units: number): number {
  const d = display.value;
  return d.perUnit === null ? units : units * d.perUnit;
}

/** The display currency's name for axis and column titles: `USD`, `CNY`, the symbol, or units. */
export function currencyLabel(): string {
  const d = display.value;
  if (d.currency === 'TOKENS') return t().units.quotaUnits;
  if (d.currency === 'CUSTOM') return d.symbol;
  return d.currency;
}
