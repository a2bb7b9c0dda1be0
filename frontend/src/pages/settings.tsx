// Settings (admin): every run-time option, grouped by module, as a form generated from the
// option metadata (type, allowed values, min/max, list length, unit, secret). One save sends every change;
// the server validates all of them and each refusal is shown at its field. Export and import.

import { useMemo, useState } from 'preact/hooks';
import { api, apiUrl, ApiError } from '../lib/api';
import { num } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { t } from '../lib/i18n';
import type { OptionMeta } from '../lib/types';
import { Card, Data, ErrorNote, Page, Pending } from '../components/ui';

/** What the form holds for one option: text for inputs, a boolean for switches. */
type Draft = string | boolean;

const MASK = '********';

function toDraft(o: OptionMeta): Draft {
  switch (o.type) {
    case 'bool':
      return o.value === true;
    case 'list':
    case 'map':
      return JSON.stringify(o.value, null, o.type === 'map' ? 2 : undefined);
    case 'secret':
      return ''; // write-only: empty means "keep"
    default:
      return o.value === null || o.value === undefined ? '' : String(o.value);
  }
}

/** The draft as the value to send, or an error message for the field. */
function parse(o: OptionMeta, d: Draft): { value: unknown } | { error: string } {
  const e = t().errors;
  const m = t().settings;
  const inRange = (n: number): string | null => {
    if (o.min !== null && n < o.min) return e.tooSmall(num(o.min, 6));
    if (o.max !== null && n > o.max) return e.tooLarge(num(o.max, 6));
    return null;
  };
  switch (o.type) {
    case 'bool':
      return { value: d === true };
    case 'int':
    case 'float': {
      const s = String(d).trim();
      const n = Number(s);
      if (s === '' || !Number.isFinite(n)) return { error: e.invalidNumber };
      if (o.type === 'int' && !Number.isInteger(n)) return { error: m.wholeNumber };
      const r = inRange(n);
      return r ? { error: r } : { value: n };
    }
    case 'enum': {
      const s = String(d);
      if (o.enum && !o.enum.includes(s)) return { error: m.notAllowed };
      return { value: s };
    }
    case 'list':
    case 'map': {
      let v: unknown;
      try {
        v = JSON.parse(String(d));
      } catch {
        return { error: e.invalidJson };
      }
      const items = o.type === 'list' ? (Array.isArray(v) ? v : null) : v && typeof v === 'object' && !Array.isArray(v) ? Object.values(v) : null;
      if (items === null) return { error: o.type === 'list' ? m.wantList : m.wantMap };
      if (o.max_items !== null && items.length > o.max_items) return { error: m.tooManyItems(num(o.max_items)) };
      for (const item of items) {
        if (o.item_type === 'string' && typeof item !== 'string') return { error: m.wantStrings };
        if ((o.item_type === 'int' || o.item_type === 'float') && typeof item !== 'number') return { error: m.wantNumbers };
        if (o.item_type === 'int' && !Number.isInteger(item)) return { error: m.wholeNumber };
        if (typeof item === 'number') {
          const r = inRange(item);
          if (r) return { error: r };
        }
      }
      return { value: v };
    }
    case 'secret':
    case 'string':
      return { value: String(d) };
  }
}

function unitLabel(unit: string | null): string | null {
  if (!unit) return null;
  const u = t().settings.units;
  return u[unit] ?? unit;
}

function OptionField(props: { o: OptionMeta; draft: Draft; error?: string; serverError?: string; onChange: (d: Draft) => void }) {
  const { o, draft } = props;
  const m = t().settings;
  const id = `opt-${o.name.replace(/\./g, '-')}`;
  const help = m.help[o.name] ?? o.description;
  const unit = unitLabel(o.unit);
  const range =
    o.min !== null && o.max !== null
      ? m.range(num(o.min, 6), num(o.max, 6))
      : o.min !== null
        ? m.atLeast(num(o.min, 6))
        : o.max !== null
          ? m.atMost(num(o.max, 6))
          : null;
  const length = o.max_items !== null ? m.maxItems(num(o.max_items)) : null;
  const structured = o.type === 'list' || o.type === 'map';
  const bad = Boolean(props.error || props.serverError);
  const describedBy = `${id}-help${bad ? ` ${id}-err` : ''}`;
  const common = { id, 'aria-describedby': describedBy, 'aria-invalid': bad ? true : undefined, name: o.name };
  let control;
  switch (o.type) {
    case 'bool':
      control = <input {...common} type="checkbox" checked={draft === true} onChange={(e) => props.onChange(e.currentTarget.checked)} />;
      break;
    case 'enum':
      control = (
        <select {...common} value={String(draft)} onChange={(e) => props.onChange(e.currentTarget.value)}>
          {(o.enum ?? []).map((v) => (
            <option key={v} value={v} translate={false}>
              {v}
            </option>
          ))}
        </select>
      );
      break;
    case 'int':
    case 'float':
      control = (
        <input
          {...common}
          type="number"
          step={o.type === 'int' ? '1' : 'any'}
          min={o.min ?? undefined}
          max={o.max ?? undefined}
          value={String(draft)}
          onInput={(e) => props.onChange(e.currentTarget.value)}
        />
      );
      break;
    case 'list':
    case 'map':
      control = <textarea {...common} class="mono" rows={o.type === 'map' ? 4 : 1} spellcheck={false} value={String(draft)} onInput={(e) => props.onChange(e.currentTarget.value)} />;
      break;
    case 'secret':
      control = <input {...common} type="password" autocomplete="off" placeholder={o.value === MASK ? m.secretKept : m.secretEmpty} value={String(draft)} onInput={(e) => props.onChange(e.currentTarget.value)} />;
      break;
    default:
      control = <input {...common} type="text" value={String(draft)} onInput={(e) => props.onChange(e.currentTarget.value)} />;
  }
  return (
    <div class={`field option ${o.type === 'bool' ? 'check' : ''} ${bad ? 'has-error' : ''}`} data-option={o.name}>
      {o.type === 'bool' && control}
      <label for={id}>
        <Data class="mono">{o.name}</Data>
        {unit && <span class="muted"> ({unit})</span>}
      </label>
      {o.type !== 'bool' && control}
      <small id={`${id}-help`} class="hint">
        {help}
        {range && ` ${range}`}
        {length && ` ${length}`}
        {structured ? ` ${m.jsonHint}` : ''}
        {!structured && (
          <>
            {' '}
            {m.defaultIs} <Data class="mono">{o.type === 'secret' ? m.secretEmpty : JSON.stringify(o.default)}</Data>
          </>
        )}
      </small>
      {structured && (
        <details class="default">
          <summary>{m.showDefault}</summary>
          <pre class="code" translate={false}>
            {JSON.stringify(o.default, null, 2)}
          </pre>
        </details>
      )}
      {bad && (
        <small id={`${id}-err`} class="field-error" role="alert">
          {props.error ?? (
            <>
              {m.refused} <q translate={false}>{props.serverError}</q>
            </>
          )}
        </small>
      )}
    </div>
  );
}

function Import(props: { onDone: () => void }) {
  const m = t().settings;
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string[] | null>(null);
  const [fileError, setFileError] = useState<string | null>(null);
  return (
    <div class="field">
      <label for="options-import">{m.importFile}</label>
      <input
        id="options-import"
        type="file"
        accept="application/json,.json"
        onChange={async (e) => {
          const file = e.currentTarget.files?.[0];
          e.currentTarget.value = '';
          if (!file) return;
          setError(null);
          setDone(null);
          setFileError(null);
          let doc: unknown;
          try {
            doc = JSON.parse(await file.text());
          } catch {
            setFileError(t().errors.invalidJson);
            return;
          }
          try {
            const r = await api.put<{ changed: string[] }>('option/import', doc);
            setDone(r.changed);
            props.onDone();
          } catch (err) {
            setError(err);
          }
        }}
      />
      <small class="hint">{m.importHint}</small>
      {fileError && (
        <small class="field-error" role="alert">
          {fileError}
        </small>
      )}
      <ErrorNote error={error} />
      {done && (
        <p class="success" role="status">
          {m.imported(num(done.length))}
        </p>
      )}
    </div>
  );
}

export default function SettingsPage() {
  const m = t().settings;
  const list = useLoad((signal) => api.get<OptionMeta[]>('option', undefined, signal), []);
  const [drafts, setDrafts] = useState<Record<string, Draft>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  // The server's reasons (its own words), kept apart from the form's checks.
  const [serverErrors, setServerErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState<string[] | null>(null);
  const [busy, setBusy] = useState(false);
  const options = list.data ?? [];
  const byName = useMemo(() => new Map(options.map((o) => [o.name, o])), [options]);
  const modules = useMemo(() => {
    const groups = new Map<string, OptionMeta[]>();
    for (const o of options) {
      const g = groups.get(o.module) ?? [];
      g.push(o);
      groups.set(o.module, g);
    }
    return [...groups.entries()];
  }, [options]);
  const draftOf = (o: OptionMeta) => (o.name in drafts ? drafts[o.name]! : toDraft(o));
  const changed = Object.keys(drafts).filter((name) => {
    const o = byName.get(name);
    return o && drafts[name] !== toDraft(o);
  });

  async function save(e: Event) {
    e.preventDefault();
    setSaved(null);
    setError(null);
    const body: Record<string, unknown> = {};
    const errs: Record<string, string> = {};
    for (const name of changed) {
      const o = byName.get(name)!;
      if (o.type === 'secret' && drafts[name] === '') continue;
      const r = parse(o, drafts[name]!);
      if ('error' in r) errs[name] = r.error;
      else body[name] = r.value;
    }
    setErrors(errs);
    setServerErrors({});
    if (Object.keys(errs).length) {
      focusFirst(errs);
      return;
    }
    if (Object.keys(body).length === 0) return;
    setBusy(true);
    try {
      const r = await api.put<{ changed: string[] }>('option', body);
      // The answer holds the flat values; the form needs the metadata again.
      list.reload();
      setDrafts({});
      setSaved(r.changed);
    } catch (err) {
      if (err instanceof ApiError && Object.keys(err.fields).length) {
        setServerErrors(err.fields);
        focusFirst(err.fields);
      }
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Page
      title={m.title}
      actions={
        <a class="button secondary" href={apiUrl('option/export')} download="sluice-options.json">
          {m.export}
        </a>
      }
    >
      <ErrorNote error={list.error} />
      {!list.data ? (
        <Pending error={list.error} />
      ) : (
        <form onSubmit={save} noValidate>
          <nav class="card toc" aria-label={m.sections}>
            <ul>
              {modules.map(([mod]) => (
                <li key={mod}>
                  <a href={`#module-${mod}`}>{m.modules[mod] ?? mod}</a>
                </li>
              ))}
            </ul>
          </nav>
          {modules.map(([mod, opts]) => (
            <Card key={mod} title={m.modules[mod] ?? mod} id={`module-${mod}`}>
              <div class="options">
                {opts.map((o) => (
                  <OptionField
                    key={o.name}
                    o={o}
                    draft={draftOf(o)}
                    error={errors[o.name]}
                    serverError={serverErrors[o.name]}
                    onChange={(d) => {
                      setDrafts((old) => ({ ...old, [o.name]: d }));
                      setSaved(null);
                    }}
                  />
                ))}
              </div>
            </Card>
          ))}
          <div class="savebar">
            {Object.keys(errors).length + Object.keys(serverErrors).length > 0 && (
              <p class="alert" role="alert" data-testid="settings-errors">
                {t().errors.fixFields}
              </p>
            )}
            {error !== null && Object.keys(serverErrors).length === 0 && <ErrorNote error={error} />}
            {saved && (
              <p class="success" role="status" data-testid="settings-saved">
                {m.savedN(num(saved.length))}
              </p>
            )}
            <span class="muted">{m.pending(num(changed.length))}</span>
            <button
              type="button"
              class="secondary"
              disabled={changed.length === 0}
              onClick={() => {
                setDrafts({});
                setErrors({});
                setServerErrors({});
              }}
            >
              {m.discard}
            </button>
            <button type="submit" disabled={busy || changed.length === 0}>
              {busy ? t().common.saving : m.save}
            </button>
          </div>
        </form>
      )}
      <Card title={m.importTitle}>
        <Import onDone={list.reload} />
      </Card>
    </Page>
  );
}

function focusFirst(errs: Record<string, string>): void {
  const first = Object.keys(errs)[0];
  if (!first) return;
  // After the render that shows the messages.
  requestAnimationFrame(() => document.getElementById(`opt-${first.replace(/\./g, '-')}`)?.focus());
}
