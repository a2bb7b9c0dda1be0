// Channels (admin): state with the reason a channel was turned off (and which of its keys are),
// priority and weight edited in the row, models, last test; test one or all; create and edit
// (channel-form.tsx); error rate and latency per channel since the server started.

import { useState } from 'preact/hooks';
import { api } from '../lib/api';
import { dateTime, ms, num, pct } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { t } from '../lib/i18n';
import type { Channel, ChannelStat, ChannelTestReport, ChannelTestRun } from '../lib/types';
import { Badge, Card, ConfirmDialog, Data, Dialog, ErrorNote, Page, Pending } from '../components/ui';
import { ChannelForm, emptyForm, formOf } from './channel-form';
import { Pager, SearchBox, usePagedList } from '../components/list';
import { forgetModels } from '../components/inputs';

/** Priority or weight, edited in the row: saved when the field loses focus or on Enter. */
function InlineNumber(props: { channel: Channel; field: 'priority' | 'weight'; onSaved: (c: Channel) => void; onError: (e: unknown) => void }) {
  const m = t().channels;
  const [v, setV] = useState(String(props.channel[props.field]));
  const [busy, setBusy] = useState(false);
  const save = async () => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || (props.field === 'weight' && n < 0)) {
      setV(String(props.channel[props.field]));
      return;
    }
    if (n === props.channel[props.field]) return;
    setBusy(true);
    try {
      props.onSaved(await api.patch<Channel>(`channels/${props.channel.id}`, { [props.field]: n }));
    } catch (e) {
      setV(String(props.channel[props.field]));
      props.onError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <input
      class="inline-num"
      type="number"
      step="1"
      min={props.field === 'weight' ? 0 : undefined}
      value={v}
      disabled={busy}
      aria-label={`${props.field === 'priority' ? m.priority : m.weight}: ${props.channel.name}`}
      onInput={(e) => setV(e.currentTarget.value)}
      onBlur={save}
      onKeyDown={(e) => {
        if (e.key === 'Enter') void save();
      }}
    />
  );
}

function StateCell(props: { c: Channel }) {
  const m = t().channels;
  const ch = props.c;
  const off = (ch.keys ?? []).filter((k) => !k.enabled);
  return (
    <>
      <Badge kind={ch.status === 'enabled' ? 'ok' : ch.status === 'auto_disabled' ? 'bad' : 'muted'}>{m.states[ch.status]}</Badge>
      {ch.status === 'auto_disabled' && ch.auto_disabled_reason && (
        <small class="muted block">
          {m.because} <Data>{ch.auto_disabled_reason}</Data>
          {ch.auto_disabled_at ? ` (${dateTime(ch.auto_disabled_at)})` : ''}
        </small>
      )}
      {ch.key_count > 1 && (
        <small class="muted block" data-testid={`keys-${ch.id}`}>
          {m.keys(num(ch.key_count))}
          {ch.keys_disabled > 0 ? `, ${m.keysOff(num(ch.keys_disabled))}` : ''}
        </small>
      )}
      {ch.status !== 'auto_disabled' &&
        off.map((k) => (
          <small class="block" key={k.fingerprint}>
            <Badge kind="bad">{m.keyOff(k.fingerprint)}</Badge> <Data>{k.disabled_reason ?? ''}</Data>
            {k.disabled_at ? ` (${dateTime(k.disabled_at)})` : ''}
          </small>
        ))}
    </>
  );
}

function LastTest(props: { c: Channel; report?: ChannelTestReport }) {
  const m = t().channels;
  const ch = props.c;
  if (!ch.tested_at && !props.report) return <span class="muted">{m.neverTested}</span>;
  const ok = props.report ? props.report.ok : ch.test_status === 'ok';
  const latency = props.report ? props.report.latency_ms : ch.test_latency_ms;
  const status = props.report ? props.report.status : ch.test_http_status;
  const error = props.report ? props.report.error : ch.test_error;
  return (
    <span data-testid={`test-result-${ch.id}`}>
      <Badge kind={ok ? 'ok' : 'bad'}>{ok ? m.testOk : m.testFailed}</Badge> {ms(latency)}
      {status !== null && status !== undefined && (
        <small class="muted">
          {' '}
          <Data>HTTP {status}</Data>
        </small>
      )}
      <br />
      <small class="muted">{dateTime(props.report ? Math.floor(Date.now() / 1000) : ch.tested_at)}</small>
      {!ok && error && (
        <small class="block">
          <Data>{error}</Data>
        </small>
      )}
    </span>
  );
}

export default function ChannelsPage() {
  const m = t().channels;
  const c = t().common;
  const list = usePagedList<Channel>('channels');
  const stats = useLoad(async (signal) => {
    const d = await api.get<{ items: ChannelStat[] }>('channels/stats', undefined, signal);
    return new Map(d.items.map((x) => [x.channel_id, x]));
  }, []);
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<Channel | null>(null);
  const [deleting, setDeleting] = useState<Channel | null>(null);
  const [reports, setReports] = useState<Record<number, ChannelTestReport>>({});
  const [testing, setTesting] = useState<number | 'all' | null>(null);
  const [runSummary, setRunSummary] = useState<ChannelTestRun | null>(null);
  const [error, setError] = useState<unknown>(null);
  const items = list.data?.items ?? [];

  async function test(ch: Channel) {
    setTesting(ch.id);
    setError(null);
    try {
      const r = await api.post<ChannelTestReport>(`channels/${ch.id}/test`, {});
      setReports((o) => ({ ...o, [ch.id]: r }));
      list.reload();
    } catch (e) {
      setError(e);
    } finally {
      setTesting(null);
    }
  }

  async function testAll() {
    setTesting('all');
    setError(null);
    try {
      const run = await api.post<ChannelTestRun>('channels/test');
      setRunSummary(run);
      setReports(Object.fromEntries(run.results.map((r) => [r.channel_id, r])));
      list.reload();
    } catch (e) {
      setError(e);
    } finally {
      setTesting(null);
    }
  }

  return (
    <Page
      title={m.title}
      actions={
        <>
          <button type="button" class="secondary" disabled={testing !== null} onClick={testAll}>
            {testing === 'all' ? m.testing : m.testAll}
          </button>
          <button type="button" onClick={() => setCreating(true)}>
            {m.new}
          </button>
        </>
      }
    >
      {runSummary && (
        <p class="notice" role="status">
          {m.runSummary(num(runSummary.tested), num(runSummary.passed), num(runSummary.failed))}
        </p>
      )}
      <Card>
        <div class="toolbar">
          <SearchBox value={list.q} onInput={list.setQ} label={m.search} />
        </div>
        <ErrorNote error={list.error ?? error ?? stats.error} />
        {!list.data ? (
          <Pending error={list.error} />
        ) : items.length === 0 ? (
          <p class="muted">{list.q ? c.noMatch : m.none}</p>
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">{m.name}</th>
                  <th scope="col">{c.status}</th>
                  <th scope="col">{m.priority}</th>
                  <th scope="col">{m.weight}</th>
                  <th scope="col">{m.models}</th>
                  <th scope="col" class="num">{m.errorRate}</th>
                  <th scope="col" class="num">{m.latencyP50}</th>
                  <th scope="col">{m.lastTest}</th>
                  <th scope="col">{c.actions}</th>
                </tr>
              </thead>
              <tbody>
                {items.map((ch) => {
                  const x = stats.data?.get(ch.id);
                  return (
                    <tr key={ch.id} data-channel-id={ch.id}>
                      <th scope="row">
                        <Data>{ch.name}</Data>
                        {ch.kind !== 'openai' && <small class="muted"> · {m.kinds[ch.kind] ?? ch.kind}</small>}
                        <small class="muted block mono">
                          <Data>{ch.base_url}</Data>
                        </small>
                      </th>
                      <td>
                        <StateCell c={ch} />
                      </td>
                      <td>
                        <InlineNumber key={`p${ch.id}-${ch.priority}`} channel={ch} field="priority" onSaved={() => list.reload()} onError={setError} />
                      </td>
                      <td>
                        <InlineNumber key={`w${ch.id}-${ch.weight}`} channel={ch} field="weight" onSaved={() => list.reload()} onError={setError} />
                      </td>
                      <td>
                        <small>
                          <Data>
                            {ch.models.slice(0, 4).join(', ')}
                            {ch.models.length > 4 ? ` +${ch.models.length - 4}` : ''}
                          </Data>
                        </small>
                      </td>
                      <td class="num">{x ? pct(x.error_rate) : '–'}</td>
                      <td class="num">{ms(x?.latency_p50_ms)}</td>
                      <td>
                        <LastTest c={ch} report={reports[ch.id]} />
                      </td>
                      <td class="actions">
                        <button type="button" class="secondary small" disabled={testing !== null} onClick={() => test(ch)} aria-label={`${m.test}: ${ch.name}`}>
                          {testing === ch.id ? m.testing : m.test}
                        </button>
                        <button type="button" class="secondary small" onClick={() => setEditing(ch)} aria-label={`${c.edit}: ${ch.name}`}>
                          {c.edit}
                        </button>
                        <button type="button" class="danger small" onClick={() => setDeleting(ch)} aria-label={`${c.delete}: ${ch.name}`}>
                          {c.delete}
                        </button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
        {list.data && list.data.total > 0 && <Pager page={list.page} total={list.data.total} onPage={list.setPage} />}
        <p class="hint">{m.statsHint}</p>
      </Card>
      <Dialog open={creating} title={m.createTitle} onClose={() => setCreating(false)} wide>
        <ChannelForm
          initial={emptyForm()}
          onDone={() => {
            setCreating(false);
            list.reload();
          }}
        />
      </Dialog>
      <Dialog open={editing !== null} title={m.editTitle} onClose={() => setEditing(null)} wide>
        {editing && (
          <ChannelForm
            initial={formOf(editing)}
            channel={editing}
            onDone={() => {
              setEditing(null);
              list.reload();
            }}
          />
        )}
      </Dialog>
      <ConfirmDialog
        open={deleting !== null}
        title={m.deleteTitle}
        body={deleting ? m.deleteBody(deleting.name) : ''}
        confirmLabel={c.delete}
        onClose={() => setDeleting(null)}
        onConfirm={async () => {
          if (!deleting) return;
          await api.del(`channels/${deleting.id}`);
          forgetModels();
          list.reload();
        }}
      />
    </Page>
  );
}
