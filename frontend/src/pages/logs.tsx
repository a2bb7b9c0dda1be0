// Logs: every filter the API has, sort, cursor paging, the totals bar for the filter, a detail
// panel per row, and a CSV export of exactly the filter shown. One list request and one totals
// request per view; typed filters wait until typing stops.

import { useMemo, useState } from 'preact/hooks';
import { api, apiUrl, type Query } from '../lib/api';
import { dateTime, learnDisplay, money, ms, num } from '../lib/format';
import { useDebounced, useLoad } from '../lib/hooks';
import { t } from '../lib/i18n';
import { isAdmin } from '../lib/session';
import type { LogPage, LogRow, LogStat } from '../lib/types';
import { Badge, Card, CopyButton, Data, Dialog, ErrorNote, Page, Pending, Stat } from '../components/ui';
import { RangePicker, resolveRange, ZoneNote, type Range } from '../components/range';

const TYPES = [2, 5, 1, 3, 4, 6] as const;
const SORTS = ['created_at', 'quota', 'latency_ms', 'prompt_tokens', 'completion_tokens'] as const;
type Sort = (typeof SORTS)[number];
const PAGE_SIZE = 50;

interface Filters {
  types: number[];
  model: string;
  key: string;
  user: string;
  channel: string;
  group: string;
  status: string;
  requestId: string;
}

const EMPTY: Filters = { types: [], model: '', key: '', user: '', channel: '', group: '', status: '', requestId: '' };

/** The query both the list, the totals and the export use, so they always agree. */
function filterQuery(f: Filters, range: { start: number | null; end: number | null }, admin: boolean): Query {
  return {
    type: f.types.length ? f.types.join(',') : undefined,
    start_timestamp: range.start ?? undefined,
    end_timestamp: range.end ?? undefined,
    model_name: f.model.trim(),
    token_name: f.key.trim(),
    username: admin ? f.user.trim() : undefined,
    channel: admin ? f.channel.trim() : undefined,
    group: f.group.trim(),
    status: f.status.trim(),
    request_id: f.requestId.trim(),
  };
}

function TypeBadge(props: { type: number }) {
  const m = t().logs.types;
  const label = m[props.type as keyof typeof m] ?? String(props.type);
  const kind = props.type === 5 ? 'bad' : props.type === 2 ? 'ok' : 'muted';
  return <Badge kind={kind}>{label}</Badge>;
}

function Detail(props: { row: LogRow; onClose: () => void }) {
  const r = props.row;
  const m = t().logs;
  const c = t().common;
  const fields: [string, preact.ComponentChildren][] = [
    [m.col.time, dateTime(r.created_at)],
    [m.col.type, <TypeBadge type={r.type} />],
    [c.user, <Data>{r.username ?? '–'}</Data>],
    [m.col.key, <Data>{r.key_name ?? '–'}</Data>],
    [c.group, <Data>{r.group ?? '–'}</Data>],
    [c.model, <Data>{r.model ?? '–'}</Data>],
  ];
  if (r.upstream_model !== undefined) fields.push([m.upstreamModel, <Data>{r.upstream_model ?? '–'}</Data>]);
  if (r.channel_id !== undefined) fields.push([m.col.channel, <Data>{r.channel_id ?? '–'}</Data>]);
  fields.push(
    [m.promptTokens, num(r.prompt_tokens)],
    [m.completionTokens, num(r.completion_tokens)],
    [m.cacheTokens, m.cacheSplit(num(r.cache_read_tokens ?? 0), num((r.cache_write_tokens ?? 0) + (r.cache_write_1h_tokens ?? 0)))],
    [m.reasoningTokens, num(r.reasoning_tokens ?? 0)],
    [m.col.cost, money(r.quota_display)],
    [m.quotaUnits, num(r.quota)],
    [m.latency, ms(r.latency_ms)],
    [m.ttfb, ms(r.ttfb_ms)],
    [m.stream, r.is_stream ? c.yes : c.no],
    [m.col.status, <Data>{r.status ?? '–'}</Data>],
    [m.usageSource, <Data>{r.usage_source ?? '–'}</Data>],
  );
  return (
    <Dialog open title={m.detailTitle} onClose={props.onClose} wide>
      <div class="field">
        <label for="log-request-id">{m.requestId}</label>
        <div class="copy-row">
          <input id="log-request-id" readOnly class="mono" value={r.request_id} translate={false} />
          <CopyButton text={r.request_id} label={m.copyRequestId} />
        </div>
      </div>
      <dl class="facts">
        {fields.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      {r.content && (
        <>
          <h3>{m.content}</h3>
          <pre class="code" translate={false} tabIndex={0}>
            {r.content}
          </pre>
        </>
      )}
    </Dialog>
  );
}

function SortHeader(props: { col: Sort; label: string; sort: Sort; order: 'asc' | 'desc'; onSort: (s: Sort) => void; num?: boolean }) {
  const active = props.sort === props.col;
  return (
    <th scope="col" class={props.num ? 'num' : undefined} aria-sort={active ? (props.order === 'asc' ? 'ascending' : 'descending') : 'none'}>
      <button type="button" class="link sort" onClick={() => props.onSort(props.col)}>
        {props.label}
        <span aria-hidden="true">{active ? (props.order === 'asc' ? ' ▲' : ' ▼') : ''}</span>
      </button>
    </th>
  );
}

export default function LogsPage() {
  const m = t().logs;
  const c = t().common;
  const admin = isAdmin.value;
  const [range, setRange] = useState<Range>({ preset: '24h', start: null, end: null });
  // A preset is resolved when picked (and on refresh), so paging keeps one window.
  const [now, setNow] = useState(() => Math.floor(Date.now() / 1000));
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [sort, setSort] = useState<Sort>('created_at');
  const [order, setOrder] = useState<'asc' | 'desc'>('desc');
  const [cursors, setCursors] = useState<string[]>([]);
  const [detail, setDetail] = useState<LogRow | null>(null);
  const debounced = useDebounced(filters, 350);
  const resolved = resolveRange(range, now);
  const query = useMemo(() => filterQuery(debounced, resolved, admin), [debounced, resolved.start, resolved.end, admin]);
  const qKey = JSON.stringify(query);
  const cursor = cursors[cursors.length - 1];
  const base = admin ? 'log' : 'log/self';

  const page = useLoad((signal) => api.get<LogPage>(base, { ...query, sort, order, page_size: PAGE_SIZE, cursor }, signal), [base, qKey, sort, order, cursor]);
  const stat = useLoad((signal) => api.get<LogStat>(`${base}/stat`, query, signal), [base, qKey]);
  if (stat.data) learnDisplay(stat.data.quota, stat.data.quota_display);

  const set = <K extends keyof Filters>(k: K, v: Filters[K]) => {
    setFilters((f) => ({ ...f, [k]: v }));
    setCursors([]);
  };
  const onSort = (col: Sort) => {
    if (col === sort) setOrder(order === 'asc' ? 'desc' : 'asc');
    else {
      setSort(col);
      setOrder('desc');
    }
    setCursors([]);
  };
  const exportHref = apiUrl(`${base}/export`, { ...query, sort, order });
  const rows = page.data?.items ?? [];
  const s = stat.data;

  const text = (k: keyof Filters, label: string, opts: { admin?: boolean; placeholder?: string; inputMode?: 'numeric' } = {}) =>
    opts.admin && !admin ? null : (
      <div class="field">
        <label for={`log-f-${k}`}>{label}</label>
        <input
          id={`log-f-${k}`}
          type="search"
          inputMode={opts.inputMode}
          value={filters[k] as string}
          placeholder={opts.placeholder}
          onInput={(e) => set(k, e.currentTarget.value as never)}
        />
      </div>
    );

  return (
    <Page
      title={m.title}
      actions={
        <>
          <button
            type="button"
            class="secondary"
            onClick={() => {
              setNow(Math.floor(Date.now() / 1000));
              setCursors([]);
            }}
          >
            {c.refresh}
          </button>
          <a class="button" href={exportHref} download data-testid="logs-export">
            {m.export}
          </a>
        </>
      }
    >
      <Card title={m.filters}>
        <RangePicker
          idPrefix="logs"
          value={range}
          onChange={(r) => {
            setRange(r);
            setNow(Math.floor(Date.now() / 1000));
            setCursors([]);
          }}
        />
        <fieldset class="types">
          <legend>{m.type}</legend>
          <div class="chips">
            {TYPES.map((ty) => (
              <label key={ty} class="chip">
                <input
                  type="checkbox"
                  checked={filters.types.includes(ty)}
                  onChange={(e) => set('types', e.currentTarget.checked ? [...filters.types, ty].sort() : filters.types.filter((x) => x !== ty))}
                />
                {m.types[ty]}
              </label>
            ))}
          </div>
          <small class="hint">{m.typeHint}</small>
        </fieldset>
        <div class="filter-grid">
          {text('model', c.model)}
          {text('key', m.col.key)}
          {text('user', c.user, { admin: true })}
          {text('channel', m.col.channel, { admin: true, inputMode: 'numeric' })}
          {text('group', c.group)}
          {text('status', m.col.status, { inputMode: 'numeric' })}
          {text('requestId', m.requestId)}
        </div>
        <button
          type="button"
          class="secondary small"
          onClick={() => {
            setFilters(EMPTY);
            setCursors([]);
          }}
        >
          {m.clear}
        </button>
      </Card>

      <section class="totals" aria-label={m.totals} data-testid="logs-totals">
        <dl class="stats">
          <Stat label={m.totalRequests} value={<span data-testid="total-requests" data-value={s?.requests}>{num(s?.requests)}</span>} />
          <Stat label={m.totalCost} value={<span data-testid="total-cost" data-value={s?.quota}>{money(s?.quota_display)}</span>} note={<span data-testid="total-quota" data-value={s?.quota}>{`${num(s?.quota)} ${t().units.quotaUnits}`}</span>} />
          <Stat
            label={m.totalTokens}
            value={<span data-testid="total-tokens" data-value={s?.tokens}>{num(s?.tokens)}</span>}
            note={m.tokenSplit(num(s?.prompt_tokens), num(s?.completion_tokens))}
          />
          <Stat label={m.rpm} value={num(s?.rpm)} note={m.lastMinute} />
          <Stat label={m.tpm} value={num(s?.tpm)} note={m.lastMinute} />
        </dl>
        <p class="hint">
          {m.totalsHint} <ZoneNote />
        </p>
        <ErrorNote error={stat.error} />
      </section>

      <Card>
        <ErrorNote error={page.error} />
        {!page.data ? (
          <Pending error={page.error} />
        ) : rows.length === 0 ? (
          <p class="muted">{m.none}</p>
        ) : (
          <div class="table-wrap">
            <table class="logs-table" aria-busy={page.loading}>
              <thead>
                <tr>
                  <SortHeader col="created_at" label={m.col.time} sort={sort} order={order} onSort={onSort} />
                  <th scope="col">{m.col.type}</th>
                  {admin && <th scope="col">{c.user}</th>}
                  <th scope="col">{m.col.key}</th>
                  <th scope="col">{c.model}</th>
                  <SortHeader col="prompt_tokens" label={m.col.prompt} sort={sort} order={order} onSort={onSort} num />
                  <SortHeader col="completion_tokens" label={m.col.completion} sort={sort} order={order} onSort={onSort} num />
                  <SortHeader col="quota" label={m.col.cost} sort={sort} order={order} onSort={onSort} num />
                  <SortHeader col="latency_ms" label={m.col.latency} sort={sort} order={order} onSort={onSort} num />
                  <th scope="col">{m.col.status}</th>
                  <th scope="col">
                    <span class="sr-only">{c.details}</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.id} data-request-id={r.request_id}>
                    <td class="nowrap">{dateTime(r.created_at)}</td>
                    <td>
                      <TypeBadge type={r.type} />
                    </td>
                    {admin && (
                      <td>
                        <Data>{r.username ?? '–'}</Data>
                      </td>
                    )}
                    <td>
                      <Data>{r.key_name ?? '–'}</Data>
                    </td>
                    <td>
                      <Data>{r.model ?? '–'}</Data>
                    </td>
                    <td class="num">{num(r.prompt_tokens)}</td>
                    <td class="num">{num(r.completion_tokens)}</td>
                    <td class="num">{money(r.quota_display)}</td>
                    <td class="num">{ms(r.latency_ms)}</td>
                    <td>
                      <Data>{r.status ?? '–'}</Data>
                    </td>
                    <td>
                      <button type="button" class="secondary small" onClick={() => setDetail(r)} aria-label={m.detailFor(r.request_id)}>
                        {c.details}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <nav class="pager" aria-label={c.pages}>
          <button type="button" class="secondary small" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
            {c.prev}
          </button>
          <span role="status">{m.pageN(num(cursors.length + 1))}</span>
          <button
            type="button"
            class="secondary small"
            disabled={!page.data?.next_cursor}
            onClick={() => page.data?.next_cursor && setCursors([...cursors, page.data.next_cursor])}
          >
            {c.next}
          </button>
        </nav>
      </Card>
      {detail && <Detail row={detail} onClose={() => setDetail(null)} />}
    </Page>
  );
}
