// Usage points (one per bucket and split value) → chart series and a totals table.

import type { UsagePoint } from './types';

export type Metric = 'quota' | 'requests' | 'tokens';

export function metricOf(p: UsagePoint, metric: Metric): number {
  if (metric === 'tokens') return p.prompt_tokens + p.completion_tokens;
  return p[metric];
}

export interface Totals {
  of: string;
  requests: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  quota: number;
}

export function emptyTotals(of: string): Totals {
  return { of, requests: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, quota: 0 };
}

function add(t: Totals, p: UsagePoint): void {
  t.requests += p.requests;
  t.errors += p.errors;
  t.prompt_tokens += p.prompt_tokens;
  t.completion_tokens += p.completion_tokens;
  t.quota += p.quota;
}

/** Totals per split value (largest spend first) and over everything. */
export function totalsBy(points: UsagePoint[]): { rows: Totals[]; all: Totals } {
  const by = new Map<string, Totals>();
  const all = emptyTotals('');
  for (const p of points) {
    const key = p.of ?? '';
    let row = by.get(key);
    if (!row) {
      row = emptyTotals(key);
      by.set(key, row);
    }
    add(row, p);
    add(all, p);
  }
  const rows = [...by.values()].sort((a, b) => b.quota - a.quota || b.requests - a.requests || a.of.localeCompare(b.of));
  return { rows, all };
}

/**
 * One series per split value for the `top` largest (the rest summed as one more series), over
 * every bucket in `buckets` (empty ones as 0, so lines do not skip gaps).
 */
export function pivot(
  points: UsagePoint[],
  metric: Metric,
  opts: { buckets: number[]; top?: number; otherLabel: string; label: (of: string) => string },
): { times: number[]; series: { label: string; values: number[] }[] } {
  // Buckets the server cut on other boundaries (a zone with a half-hour offset) are kept as they come.
  const times = Array.from(new Set([...opts.buckets, ...points.map((p) => p.time)])).sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const { rows } = totalsBy(points);
  const top = opts.top ?? 8;
  const shown = rows.slice(0, top).map((r) => r.of);
  const hasOther = rows.length > top;
  const series = shown.map((of) => ({ label: opts.label(of), values: times.map(() => 0) }));
  const other = { label: opts.otherLabel, values: times.map(() => 0) };
  for (const p of points) {
    const i = index.get(p.time);
    if (i === undefined) continue;
    const s = shown.indexOf(p.of ?? '');
    const target = s >= 0 ? series[s]! : other;
    target.values[i] = (target.values[i] ?? 0) + metricOf(p, metric);
  }
  return { times, series: hasOther ? [...series, other] : series };
}

