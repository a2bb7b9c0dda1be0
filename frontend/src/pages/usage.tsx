// Usage: hourly or daily charts split by model, user, key or channel, with a totals table whose
// sums are the sums of the buckets drawn. The time zone the buckets were cut in is stated.

import { useMemo, useState } from 'preact/hooks';
import { api } from '../lib/api';
import { amountOfUnits, currencyLabel, learnDisplay, moneyOfUnits, num, pct } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { t } from '../lib/i18n';
import { isAdmin } from '../lib/session';
import { pivot, totalsBy, type Metric } from '../lib/series';
import type { UsageSeries } from '../lib/types';
import { Card, Data, ErrorNote, InlineBar, Page, Pending } from '../components/ui';
import { axisMoney, TimeChart } from '../components/chart';
import { splitLabel, usageEndNow, usageQuery, type SplitBy, ZoneStatement } from '../components/usage';

type Span = '24h' | '7d' | '30d';
const SPAN_SECS: Record<Span, number> = { '24h': 86_400, '7d': 7 * 86_400, '30d': 30 * 86_400 };

export default function UsagePage() {
  const m = t().usage;
  const c = t().common;
  const admin = isAdmin.value;
  const [span, setSpan] = useState<Span>('24h');
  const [bucket, setBucket] = useState<'hour' | 'day'>('hour');
  const [by, setBy] = useState<SplitBy>('model');
  const [metric, setMetric] = useState<Metric>('quota');
  const [now] = useState(usageEndNow);
  const q = useMemo(() => usageQuery(bucket, now - SPAN_SECS[span], now), [bucket, span, now]);
  // Each answer keeps the split it was asked for: while a new split loads, the last one's
  // points stay on screen, labelled as what they are.
  const data = useLoad(
    async (signal) => ({ by, usage: await api.get<UsageSeries>(admin ? 'usage' : 'usage/self', { ...q.query, by }, signal) }),
    [admin, by, q],
  );
  const usage = data.data?.usage;
  const shownBy = data.data?.by ?? by;
  const points = usage?.points ?? [];
  points.forEach((p) => learnDisplay(p.quota, p.quota_display));
  const label = useMemo(() => splitLabel(shownBy, usage?.names), [shownBy, usage]);
  const chart = useMemo(
    () =>
      pivot(points, metric, {
        buckets: q.buckets,
        otherLabel: c.other,
        label,
      }),
    [points, metric, q, label],
  );
  const series = metric === 'quota' ? chart.series.map((s) => ({ ...s, values: s.values.map(amountOfUnits) })) : chart.series;
  const { rows, all } = totalsBy(points);
  const maxQuota = rows[0]?.quota ?? 0;
  const splits: SplitBy[] = admin ? ['model', 'user', 'key', 'channel'] : ['model', 'key'];
  const metricUnit = metric === 'quota' ? currencyLabel() : metric === 'requests' ? t().units.requests : t().units.tokens;

  return (
    <Page title={m.title}>
      <Card>
        <div class="controls">
          <div class="field inline">
            <label for="usage-span">{m.span}</label>
            <select
              id="usage-span"
              value={span}
              onChange={(e) => {
                const v = e.currentTarget.value as Span;
                setSpan(v);
                if (v === '24h') setBucket('hour');
                if (v === '30d') setBucket('day');
              }}
            >
              <option value="24h">{t().range.presets['24h']}</option>
              <option value="7d">{t().range.presets['7d']}</option>
              <option value="30d">{t().range.presets['30d']}</option>
            </select>
          </div>
          <div class="field inline">
            <label for="usage-bucket">{m.bucket}</label>
            <select id="usage-bucket" value={bucket} onChange={(e) => setBucket(e.currentTarget.value as 'hour' | 'day')}>
              <option value="hour">{m.hourly}</option>
              <option value="day">{m.daily}</option>
            </select>
          </div>
          <div class="field inline">
            <label for="usage-by">{m.by}</label>
            <select id="usage-by" value={by} onChange={(e) => setBy(e.currentTarget.value as SplitBy)}>
              {splits.map((s) => (
                <option key={s} value={s}>
                  {m.splits[s]}
                </option>
              ))}
            </select>
          </div>
          <div class="field inline">
            <label for="usage-metric">{m.metric}</label>
            <select id="usage-metric" value={metric} onChange={(e) => setMetric(e.currentTarget.value as Metric)}>
              <option value="quota">{m.metrics.quota}</option>
              <option value="requests">{m.metrics.requests}</option>
              <option value="tokens">{m.metrics.tokens}</option>
            </select>
          </div>
        </div>
        <p class="hint">
          <ZoneStatement bucket={bucket} series={usage} />
        </p>
      </Card>
      <ErrorNote error={data.error} />
      {!data.data ? (
        <Pending error={data.error} />
      ) : (
        <>
          <Card title={`${m.metrics[metric]} (${metricUnit})`}>
            {points.length === 0 ? (
              <p class="muted">{m.none}</p>
            ) : (
              <TimeChart
                testid="usage-chart"
                label={m.chartLabel(m.metrics[metric], m.splits[shownBy])}
                times={chart.times}
                series={series}
                hourly={bucket === 'hour'}
                format={metric === 'quota' ? axisMoney : undefined}
              />
            )}
          </Card>
          <Card title={m.totalsTitle}>
            <div class="table-wrap">
              <table data-testid="usage-totals">
                <thead>
                  <tr>
                    <th scope="col">{m.splits[shownBy]}</th>
                    <th scope="col" class="num">{m.requests}</th>
                    <th scope="col" class="num">{m.errors}</th>
                    <th scope="col" class="num">{m.inputTokens}</th>
                    <th scope="col" class="num">{m.outputTokens}</th>
                    <th scope="col" class="num">{m.spend}</th>
                    <th scope="col">{m.share}</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((r) => (
                    <tr key={r.of}>
                      <th scope="row">
                        <Data>{label(r.of)}</Data>
                      </th>
                      <td class="num">{num(r.requests)}</td>
                      <td class="num">{num(r.errors)}</td>
                      <td class="num">{num(r.prompt_tokens)}</td>
                      <td class="num">{num(r.completion_tokens)}</td>
                      <td class="num">{moneyOfUnits(r.quota)}</td>
                      <td>
                        <InlineBar value={r.quota} max={maxQuota} label={pct(all.quota ? r.quota / all.quota : 0)} />
                      </td>
                    </tr>
                  ))}
                </tbody>
                <tfoot>
                  <tr>
                    <th scope="row">{c.total}</th>
                    <td class="num" data-testid="usage-total-requests" data-value={all.requests}>
                      {num(all.requests)}
                    </td>
                    <td class="num">{num(all.errors)}</td>
                    <td class="num">{num(all.prompt_tokens)}</td>
                    <td class="num">{num(all.completion_tokens)}</td>
                    <td class="num" data-testid="usage-total-spend" data-value={all.quota}>
                      {moneyOfUnits(all.quota)}
                    </td>
                    <td />
                  </tr>
                </tfoot>
              </table>
            </div>
          </Card>
        </>
      )}
    </Page>
  );
}
