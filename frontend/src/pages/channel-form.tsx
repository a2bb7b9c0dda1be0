// The channel form (admin): create and edit a channel with write-only keys (one per line), the
// kind's settings (Azure's API version and route, whether the upstream has the Responses API) and
// a model mapping editor. Used by channels.tsx.

import { useState } from 'preact/hooks';
import { api } from '../lib/api';
import { t } from '../lib/i18n';
import type { Channel } from '../lib/types';
import { Checkbox, ErrorNote, Field } from '../components/ui';
import { forgetModels } from '../components/inputs';

export interface Form {
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
  /** settings.responses_api as stored; null: the kind's default (see responsesDefault). */
  responses_api: boolean | null;
}

/** Whether an openai or azure channel has the Responses API when its settings do not say
 * (as the server decides: openai yes, azure on the v1 route only). */
const responsesDefault = (f: Pick<Form, 'kind' | 'azure_route'>) => f.kind !== 'azure' || f.azure_route === 'v1';

/** The kinds that take settings.responses_api. */
const takesResponses = (kind: string) => kind === 'openai' || kind === 'azure';

export function emptyForm(): Form {
  return { kind: 'openai', name: '', base_url: '', api_key: '', models: '', mapping: [], groups: 'default', priority: '0', weight: '1', test_model: '', enabled: true, api_version: '', azure_route: 'deployments', responses_api: null };
}

export function formOf(c: Channel): Form {
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
    responses_api: c.settings?.responses_api ?? null,
  };
}

/** The keys typed, one per line (surrounding spaces and blank lines dropped). */
const keyLines = (s: string) =>
  s
    .split('\n')
    .map((x) => x.trim())
    .filter(Boolean);

/** The settings the form's kind takes; `{}` for kinds that take none. The whole object is
 * sent on every save (the server replaces it), so each setting the form shows is kept here. */
function settingsOf(f: Form): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  // Only a value that differs from the kind's default is stored, so the channel follows the
  // default if the kind or route changes later.
  if (takesResponses(f.kind) && f.responses_api !== null && f.responses_api !== responsesDefault(f)) out.responses_api = f.responses_api;
  if (f.kind !== 'azure') return out;
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

export function ChannelForm(props: { initial: Form; channel?: Channel; onDone: () => void }) {
  const m = t().channels;
  const c = t().common;
  const creating = !props.channel;
  const [f, setF] = useState(props.initial);
  const [errors, setErrors] = useState<Errors>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = <K extends keyof Form>(k: K, v: Form[K]) => setF((o) => ({ ...o, [k]: v }));
  const azure = f.kind === 'azure';
  const gemini = f.kind === 'gemini';
  const anthropic = f.kind === 'anthropic';

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
              <option value="anthropic">{m.kinds.anthropic}</option>
              <option value="azure">{m.kinds.azure}</option>
              <option value="gemini">{m.kinds.gemini}</option>
            </select>
          )}
        </Field>
      </div>
      <Field label={m.baseUrl} error={errors.base_url} hint={azure ? m.baseUrlHintAzure : gemini ? m.baseUrlHintGemini : anthropic ? m.baseUrlHintAnthropic : m.baseUrlHint}>
        {(p) => <input {...p} name="base_url" type="url" placeholder={azure ? 'https://my-resource.openai.azure.com' : gemini ? 'https://generativelanguage.googleapis.com' : anthropic ? 'https://api.anthropic.com' : 'https://api.openai.com/v1'} value={f.base_url} onInput={(e) => set('base_url', e.currentTarget.value)} />}
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
      {takesResponses(f.kind) && <Checkbox label={m.responsesApi} hint={m.responsesApiHint} checked={f.responses_api ?? responsesDefault(f)} onChange={(v) => set('responses_api', v)} />}
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

/** The stored keys as the edit form names them: fingerprints, never the keys. */
function keysStored(ch: Channel): string {
  const keys = ch.keys ?? [];
  return keys.length > 1 ? keys.map((k) => k.fingerprint).join(', ') : ch.api_key;
}
