// Channels (admin): state with the reason a channel was turned off (and which of its keys are),
// priority and weight edited in the row, models, last test; test one or all; create and edit with
// write-only keys (one per line), the kind's settings (Azure's API version and route) and a model
// mapping editor; error rate and latency per channel since the server started.

import { useState } from 'preact/hooks';
import { api } from '../lib/api';
import { dateTime, ms, num, pct } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { t } from '../lib/i18n';
import type { Channel, ChannelStat, ChannelTestReport, ChannelTestRun } from '../lib/types';
import { Badge, Card, Checkbox, ConfirmDialog, Data, Dialog, ErrorNote, Field, Page, Pending } from '../components/ui';
import { Pager, SearchBox, usePagedList } from '../components/list';
import { forgetModels } from '../components/inputs';

interface Form {
  kind: string;
  name: string;
  base_url: string;
  api_key: string;
  models: string;
  mapping: [string, string][];
  groups: string;
  priority: string;
  weight: string;
  test_model: string;
  enabled: boolean;
  api_version: string;
  azure_route: 'deployments' | 'v1';
}

function emptyForm(): Form {
  return { kind: 'openai', name: '', base_url: '', api_key: '', models: '', mapping: [], groups: 'default', priority: '0', weight: '1', test_model: '', enabled: true, api_version: '', azure_route: 'deployments' };
}

function formOf(c: Channel): Form {
  return {
    kind: c.kind,
    name: c.name,
    base_url: c.base_url,
    api_key: '',
    models: c.models.join('\n'),
    mapping: Object.entries(c.model_mapping),
    groups: c.groups.join(', '),
    priority: String(c.priority),
    weight: String(c.weight),
    test_model: c.test_model ?? '',
    enabled: c.enabled,
    api_version: c.settings?.api_version ?? '',
    azure_route: c.settings?.azure_route ?? 'deployments',
  };
}

/** The keys typed, one per line (surrounding spaces and blank lines dropped). */
const keyLines = (s: string) =>
  s
    .split('\n')
    .map((x) => x.trim())
    .filter(Boolean);

/** The settings the form's kind takes; `{}` for kinds that take none. */
function settingsOf(f: Form): Record<string, string> {
  if (f.kind !== 'azure') return {};
  const out: Record<string, string> = {};
  if (f.azure_route === 'v1') out.azure_route = 'v1';
  else if (f.api_version.trim()) out.api_version = f.api_version.trim();
  return out;
}

const split = (s: string) =>
  s
    .split(/[\n,]/)
    .map((x) => x.trim())
    .filter(Boolean);

type Errors = Partial<Record<keyof Form, string>>;

function validate(f: Form, creating: boolean): Errors {
  const m = t();
  const e: Errors = {};
  if (!f.name.trim()) e.name = m.errors.required;
  try {
    const u = new URL(f.base_url.trim());
    if (u.protocol !== 'http:' && u.protocol !== 'https:') e.base_url = m.channels.urlScheme;
    else if (u.search) e.base_url = m.channels.urlQuery;
  } catch {
    e.base_url = m.channels.urlInvalid;
  }
  const keys = keyLines(f.api_key);
  if (creating && keys.length === 0) e.api_key = m.errors.required;
  else if (keys.some((k) => /\s/.test(k))) e.api_key = m.channels.keySpaces;
  else if (new Set(keys).size !== keys.length) e.api_key = m.channels.keyTwice;
  if (f.kind === 'azure' && f.azure_route === 'deployments' && f.api_version.trim() && !/^[A-Za-z0-9.-]{1,64}$/.test(f.api_version.trim())) e.api_version = m.channels.apiVersionInvalid;
  if (split(f.models).length === 0) e.models = m.channels.modelsRequired;
  if (split(f.groups).length === 0) e.groups = m.errors.required;
  if (!Number.isInteger(Number(f.priority)) || f.priority.trim() === '') e.priority = m.errors.invalidNumber;
  if (!Number.isInteger(Number(f.weight)) || Number(f.weight) < 0 || f.weight.trim() === '') e.weight = m.errors.tooSmall('0');
  if (f.mapping.some(([from, to]) => !from.trim() || !to.trim())) e.mapping = m.channels.mappingIncomplete;
  return e;
}

function MappingEditor(props: { value: [string, string][]; onChange: (v: [string, string][]) => void; error?: string }) {
  const m = t().channels;
  const rows = props.value;
  const set = (i: number, j: 0 | 1, v: string) => props.onChange(rows.map((r, k) => (k === i ? ((j === 0 ? [v, r[1]] : [r[0], v]) as [string, string]) : r)));
  return (
    <fieldset class="mapping">
      <legend>{m.mapping}</legend>
      <small class="hint">{m.mappingHint}</small>
      {rows.map(([from, to], i) => (
        <div class="row" key={i}>
          <div class="field">
            <label for={`map-from-${i}`}>{m.mapFrom}</label>
            <input id={`map-from-${i}`} value={from} onInput={(e) => set(i, 0, e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for={`map-to-${i}`}>{m.mapTo}</label>
            <input id={`map-to-${i}`} value={to} onInput={(e) => set(i, 1, e.currentTarget.value)} />
          </div>
          <div class="field">
            <span class="sr-only">{t().common.actions}</span>
            <button type="button" class="secondary small" onClick={() => props.onChange(rows.filter((_, k) => k !== i))} aria-label={m.removeMapping(String(i + 1))}>
              {m.remove}
            </button>
          </div>
        </div>
      ))}
      {props.error && (
        <small class="field-error" role="alert">
          {props.error}
        </small>
      )}
      <div>
        <button type="button" class="secondary small" onClick={() => props.onChange([...rows, ['', '']])}>
          {m.addMapping}
        </button>
      </div>
    </fieldset>
  );
}

function ChannelForm(props: { initial: Form; channel?: Channel; onDone: () => void }) {
  const m = t().channels;
  const c = t().common;
  const creating = !props.channel;
  const [f, setF] = useState(props.initial);
  const [errors, setErrors] = useState<Errors>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = <K extends keyof Form>(k: K, v: Form[K]) => setF((o) => ({ ...o, [k]: v }));
  const azure = f.kind === 'azure';

  async function submit(e: Event) {
    e.preventDefault();
    const errs = validate(f, creating);
    setErrors(errs);
    if (Object.keys(errs).length) return;
    const body: Record<string, unknown> = {
      kind: f.kind,
      name: f.name.trim(),
      base_url: f.base_url.trim(),
      models: split(f.models),
      model_mapping: Object.fromEntries(f.mapping.map(([a, b]) => [a.trim(), b.trim()])),
      groups: split(f.groups),
      priority: Number(f.priority),
      weight: Number(f.weight),
      enabled: f.enabled,
      test_model: f.test_model.trim() || null,
      settings: settingsOf(f),
    };
    // Write-only: an empty field on edit keeps the stored keys.
    const keys = keyLines(f.api_key);
    if (keys.length) body.api_key = keys.join('\n');
    setBusy(true);
    setError(null);
    try {
      if (creating) await api.post('channels', body);
      else await api.patch(`channels/${props.channel!.id}`, body);
      forgetModels();
      props.onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="form" onSubmit={submit} noValidate>
      <div class="row">
        <Field label={m.name} error={errors.name}>
          {(p) => <input {...p} name="name" value={f.name} maxLength={64} onInput={(e) => set('name', e.currentTarget.value)} />}
        </Field>
        <Field label={m.kind}>
          {(p) => (
            <select {...p} value={f.kind} onChange={(e) => set('kind', e.currentTarget.value)}>
              <option value="openai">{m.kinds.openai}</option>
              <option value="azure">{m.kinds.azure}</option>
            </select>
          )}
        </Field>
      </div>
      <Field label={m.baseUrl} error={errors.base_url} hint={azure ? m.baseUrlHintAzure : m.baseUrlHint}>
        {(p) => <input {...p} name="base_url" type="url" placeholder={azure ? 'https://my-resource.openai.azure.com' : 'https://api.openai.com/v1'} value={f.base_url} onInput={(e) => set('base_url', e.currentTarget.value)} />}
      </Field>
      {azure && (
        <div class="row">
          <Field label={m.azureRoute} hint={m.azureRouteHint}>
            {(p) => (
              <select {...p} value={f.azure_route} onChange={(e) => set('azure_route', e.currentTarget.value as Form['azure_route'])}>
                <option value="deployments">{m.azureRoutes.deployments}</option>
                <option value="v1">{m.azureRoutes.v1}</option>
              </select>
            )}
          </Field>
          {f.azure_route === 'deployments' && (
            <Field label={m.apiVersion} error={errors.api_version} hint={m.apiVersionHint}>
              {(p) => <input {...p} name="api_version" placeholder="2024-10-21" value={f.api_version} maxLength={64} onInput={(e) => set('api_version', e.currentTarget.value)} />}
            </Field>
          )}
        </div>
      )}
      <Field label={m.apiKey} error={errors.api_key} hint={creating ? m.apiKeyHint : m.apiKeyKeep(keysStored(props.channel!))}>
        {(p) => <textarea {...p} name="api_key" class="secret-keys" autocomplete="off" spellcheck={false} rows={2} value={f.api_key} onInput={(e) => set('api_key', e.currentTarget.value)} />}
      </Field>
      <Field label={m.models} error={errors.models} hint={m.modelsHint}>
        {(p) => <textarea {...p} name="models" value={f.models} onInput={(e) => set('models', e.currentTarget.value)} />}
      </Field>
      <MappingEditor value={f.mapping} onChange={(v) => set('mapping', v)} error={errors.mapping} />
      <div class="row">
        <Field label={m.groups} error={errors.groups} hint={m.groupsHint}>
          {(p) => <input {...p} name="groups" value={f.groups} onInput={(e) => set('groups', e.currentTarget.value)} />}
        </Field>
        <Field label={m.testModel} hint={m.testModelHint}>
          {(p) => <input {...p} name="test_model" value={f.test_model} onInput={(e) => set('test_model', e.currentTarget.value)} />}
        </Field>
      </div>
      <div class="row">
        <Field label={m.priority} error={errors.priority} hint={m.priorityHint}>
          {(p) => <input {...p} type="number" step="1" value={f.priority} onInput={(e) => set('priority', e.currentTarget.value)} />}
        </Field>
        <Field label={m.weight} error={errors.weight} hint={m.weightHint}>
          {(p) => <input {...p} type="number" min="0" step="1" value={f.weight} onInput={(e) => set('weight', e.currentTarget.value)} />}
        </Field>
      </div>
      <Checkbox label={c.enabled} checked={f.enabled} onChange={(v) => set('enabled', v)} />
      <ErrorNote error={error} />
      <div class="buttons">
        <button type="submit" disabled={busy}>
          {busy ? c.saving : creating ? m.create : c.save}
        </button>
      </div>
    </form>
  );
}

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

/** The stored keys as the edit form names them: fingerprints, never the keys. */
function keysStored(ch: Channel): string {
  const keys = ch.keys ?? [];
  return keys.length > 1 ? keys.map((k) => k.fingerprint).join(', ') : ch.api_key;
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
