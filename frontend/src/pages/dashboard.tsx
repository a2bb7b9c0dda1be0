// Dashboard: balance, spend, requests, tokens and RPM/TPM now; spend and requests over time by
// model; top models and keys. Admins also see the whole gateway: channels, error rates and
// latency, anomalies, database and writer health, requests in flight, version and uptime.

import { useMemo, useState } from 'preact/hooks';
import { api } from '../lib/api';
import { href } from '../lib/base';
import { amountOfUnits, currencyLabel, duration, learnDisplay, money, ms, num, pct, timeZone } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { t } from '../lib/i18n';
import { pivot } from '../lib/series';
import type { Dashboard, RankedUsage } from '../lib/types';
import { Badge, Card, Data, ErrorNote, InlineBar, Page, Pending, Stat } from '../components/ui';
import { axisMoney, TimeChart } from '../components/chart';
import { usageQuery, ZoneStatement } from '../components/usage';

/** The buckets of the dashboard's range (the server says where it starts and ends). */
function bucketsOf(d: Dashboard): number[] {
  return usageQuery(d.bucket, d.start, d.end).buckets;
}

function Overview(props: { d: Dashboard }) {
  const m = t().dash;
  const d = props.d;
  const all = d.scope === 'all';
  const hourly = d.bucket === 'hour';
  const buckets = useMemo(() => bucketsOf(d), [d]);
  const common = { buckets, otherLabel: t().common.other, label: (of: string) => of || t().usage.unknownModel };
  const spend = useMemo(() => pivot(d.series, 'quota', common), [d]);
  const reqs = useMemo(() => pivot(d.series, 'requests', common), [d]);
  const s = d.totals;

  return (
    <>
      <dl class="stats" data-testid="dash-stats">
        <Stat label={m.balance} value={money(d.balance.quota_display)} note={m.yourAccount} />
        <Stat label={m.spend} value={<span data-testid="dash-spend" data-value={s.quota}>{money(s.quota_display)}</span>} note={all ? m.allUsers : m.yours} />
        <Stat label={m.requests} value={<span data-testid="dash-requests" data-value={s.requests}>{num(s.requests)}</span>} note={all ? m.allUsers : m.yours} />
        <Stat label={m.tokens} value={num(s.tokens)} note={t().logs.tokenSplit(num(s.prompt_tokens), num(s.completion_tokens))} />
        <Stat label={m.rpm} value={num(d.now.rpm)} note={m.now} />
        <Stat label={m.tpm} value={num(d.now.tpm)} note={m.now} />
      </dl>
      <p class="hint">
        <ZoneStatement bucket={d.bucket} series={d} />
      </p>
      <div class="grid2">
        <Card title={`${m.spendOverTime} (${currencyLabel()})`}>
          {d.series.length === 0 ? (
            <p class="muted">{m.noUsage}</p>
          ) : (
            <TimeChart
              testid="dash-spend-chart"
              label={m.spendOverTime}
              times={spend.times}
              series={spend.series.map((x) => ({ ...x, values: x.values.map(amountOfUnits) }))}
              hourly={hourly}
              format={axisMoney}
            />
          )}
        </Card>
        <Card title={`${m.requestsOverTime} (${t().units.requests})`}>
          {d.series.length === 0 ? (
            <p class="muted">{m.noUsage}</p>
          ) : (
            <TimeChart testid="dash-requests-chart" label={m.requestsOverTime} times={reqs.times} series={reqs.series} hourly={hourly} />
          )}
        </Card>
      </div>
      <div class="grid2">
        <Card title={m.topModels}>
          <Ranking rows={d.top_models} total={s.quota} name={(r) => r.of || t().usage.unknownModel} testid="dash-top-models" />
        </Card>
        <Card title={m.topKeys}>
          <Ranking rows={d.top_keys} total={s.quota} name={(r) => r.name ?? m.deletedKey(r.of)} testid="dash-top-keys" />
        </Card>
      </div>
    </>
  );
}

function Ranking(props: { rows: RankedUsage[]; total: number; name: (r: RankedUsage) => string; testid: string }) {
  const m = t().dash;
  if (props.rows.length === 0) return <p class="muted">{m.noUsage}</p>;
  const max = props.rows[0]?.quota ?? 0;
  return (
    <div class="table-wrap">
      <table data-testid={props.testid}>
        <thead>
          <tr>
            <th scope="col">{t().common.name}</th>
            <th scope="col" class="num">{m.requests}</th>
            <th scope="col" class="num">{m.tokens}</th>
            <th scope="col" class="num">{m.spend}</th>
            <th scope="col">{t().usage.share}</th>
          </tr>
        </thead>
        <tbody>
          {props.rows.map((r) => (
            <tr key={r.of}>
              <th scope="row">
                <Data>{props.name(r)}</Data>
              </th>
              <td class="num">{num(r.requests)}</td>
              <td class="num">{num(r.tokens)}</td>
              <td class="num">{money(r.quota_display)}</td>
              <td>
                <InlineBar value={r.quota} max={max} label={pct(props.total ? r.quota / props.total : 0)} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function AdminPanel(props: { a: NonNullable<Dashboard['admin']> }) {
  const m = t().dash;
  const c = t().common;
  const a = props.a;
  return (
    <>
      <h2 class="section-title">{m.gateway}</h2>
      <dl class="stats" data-testid="dash-admin">
        <Stat label={m.channelsUp} value={num(a.channels.enabled)} note={m.channelsOf(num(a.channels.total))} />
        <Stat label={m.autoDisabled} value={num(a.channels.auto_disabled)} note={m.disabledByAdmin(num(a.channels.disabled))} />
        <Stat label={m.inFlight} value={num(a.in_flight)} note={m.streams(num(a.streams_in_flight))} />
        <Stat label={m.database} value={a.database.healthy ? <Badge kind="ok">{m.healthy}</Badge> : <Badge kind="bad">{m.failing}</Badge>} />
        <Stat label={m.writer} value={num(a.database.writer_queue)} note={m.writerNote} />
        <Stat label={m.anomalies} value={<a href={href('ops#anomalies')}>{num(a.anomalies)}</a>} note={m.anomaliesNote} />
        <Stat label={m.version} value={<Data>{a.version}</Data>} />
        <Stat label={m.uptime} value={duration(a.uptime_secs)} />
      </dl>
      <Card title={m.channelHealth}>
        {a.channels.total === 0 ? (
          <p class="muted">
            {m.noChannels} <a href={href('channels')}>{m.addChannel}</a>
          </p>
        ) : a.channel_stats.length === 0 ? (
          <p class="muted">{m.noChannelCalls}</p>
        ) : (
          <div class="table-wrap">
            <table data-testid="dash-channels">
              <thead>
                <tr>
                  <th scope="col">{c.name}</th>
                  <th scope="col" class="num">{m.requests}</th>
                  <th scope="col" class="num">{m.errorRate}</th>
                  <th scope="col" class="num">{m.ttfbP50}</th>
                  <th scope="col" class="num">{m.ttfbP99}</th>
                </tr>
              </thead>
              <tbody>
                {a.channel_stats.map((x) => (
                  <tr key={x.channel_id}>
                    <th scope="row">
                      <Data>{x.name ?? `#${x.channel_id}`}</Data>
                    </th>
                    <td class="num">{num(x.requests)}</td>
                    <td class="num">{pct(x.error_rate)}</td>
                    <td class="num">{ms(x.ttfb_p50_ms)}</td>
                    <td class="num">{ms(x.ttfb_p99_ms)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <p class="hint">{m.lastHour}</p>
      </Card>
    </>
  );
}

export default function DashboardPage() {
  const m = t().dash;
  const [range, setRange] = useState<'24h' | '30d'>('24h');
  const data = useLoad((signal) => api.get<Dashboard>('dashboard', { range, tz: timeZone() }, signal), [range]);
  const d = data.data;
  if (d) learnDisplay(d.totals.quota, d.totals.quota_display);
  return (
    <Page
      title={m.title}
      actions={
        <div class="seg" role="group" aria-label={m.period}>
          {(['24h', '30d'] as const).map((r) => (
            <button key={r} type="button" class={`seg-btn ${range === r ? 'on' : ''}`} aria-pressed={range === r} onClick={() => setRange(r)}>
              {r === '24h' ? m.last24h : m.last30d}
            </button>
          ))}
        </div>
      }
    >
      <ErrorNote error={data.error} />
      {!d ? (
        <Pending error={data.error} />
      ) : (
        <>
          <Overview d={d} />
          {d.admin && <AdminPanel a={d.admin} />}
        </>
      )}
    </Page>
  );
}
