// API keys: list with usage and what is left, create (the secret shown once, with the base URL
// to use), enable/disable, edit, delete. Admins see everyone's keys and can filter by user.

import { useState } from 'preact/hooks';
import { api } from '../lib/api';
import { relayBaseUrl } from '../lib/base';
import { dateTime, learnDisplay, money, num } from '../lib/format';
import { t } from '../lib/i18n';
import { isAdmin } from '../lib/session';
import type { Key, KeyCreated } from '../lib/types';
import { Badge, Card, Checkbox, ConfirmDialog, CopyButton, Data, Dialog, ErrorNote, Field, Page, Pending } from '../components/ui';
import { fromLocalInput, ModelPicker, MoneyInput, toLocalInput, unitsHint } from '../components/inputs';
import { Pager, SearchBox, usePagedList } from '../components/list';
import { UserPicker, type UserChoice } from '../components/users';

type KeyState = 'enabled' | 'disabled' | 'expired' | 'exhausted';

function keyState(k: Key): KeyState {
  if (!k.enabled) return 'disabled';
  if (k.expires_at !== null && k.expires_at * 1000 < Date.now()) return 'expired';
  if (!k.unlimited && k.remain_quota <= 0) return 'exhausted';
  return 'enabled';
}

function StateBadge(props: { k: Key }) {
  const s = keyState(props.k);
  const m = t().keys.states;
  return <Badge kind={s === 'enabled' ? 'ok' : s === 'disabled' ? 'muted' : 'warn'}>{m[s]}</Badge>;
}

interface Form {
  name: string;
  unlimited: boolean;
  quota: number | null;
  expires_at: number | null;
  models: string[] | null;
  rpm_limit: string;
  tpm_limit: string;
  owner: UserChoice | null;
}

function emptyForm(): Form {
  return { name: '', unlimited: false, quota: null, expires_at: null, models: null, rpm_limit: '', tpm_limit: '', owner: null };
}

function formOf(k: Key): Form {
  return {
    name: k.name,
    unlimited: k.unlimited,
    quota: k.remain_quota,
    expires_at: k.expires_at,
    models: k.models,
    rpm_limit: k.rpm_limit === null ? '' : String(k.rpm_limit),
    tpm_limit: k.tpm_limit === null ? '' : String(k.tpm_limit),
    owner: null,
  };
}

type Errors = Partial<Record<keyof Form, string>>;

function limit(v: string): number | null {
  return v.trim() === '' ? null : Number(v);
}

function validate(f: Form, creating: boolean): Errors {
  const m = t();
  const e: Errors = {};
  if (!f.name.trim()) e.name = m.errors.required;
  else if (f.name.trim().length > 64) e.name = m.errors.tooLarge('64');
  if (!f.unlimited && f.quota === null && creating) e.quota = m.keys.quotaOrUnlimited;
  if (f.quota !== null && f.quota < 0) e.quota = m.errors.tooSmall('0');
  if (f.expires_at !== null && f.expires_at * 1000 <= Date.now() && creating) e.expires_at = m.keys.expiryPast;
  for (const field of ['rpm_limit', 'tpm_limit'] as const) {
    const n = limit(f[field]);
    if (n !== null && (!Number.isInteger(n) || n < 0)) e[field] = m.errors.tooSmall('0');
  }
  return e;
}

function KeyForm(props: { initial: Form; creating: boolean; onDone: (k: Key | KeyCreated) => void; keyId?: number; chooseOwner?: boolean }) {
  const m = t().keys;
  const c = t().common;
  const [f, setF] = useState<Form>(props.initial);
  const [errors, setErrors] = useState<Errors>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = <K extends keyof Form>(k: K, v: Form[K]) => setF((old) => ({ ...old, [k]: v }));

  async function submit(e: Event) {
    e.preventDefault();
    const errs = validate(f, props.creating);
    setErrors(errs);
    if (Object.keys(errs).length) return;
    const body: Record<string, unknown> = {
      name: f.name.trim(),
      unlimited: f.unlimited,
      models: f.models,
      rpm_limit: limit(f.rpm_limit),
      tpm_limit: limit(f.tpm_limit),
    };
    if (f.quota !== null) body.quota = f.quota;
    if (props.creating) {
      if (f.expires_at !== null) body.expires_at = f.expires_at;
      if (f.models === null) delete body.models;
      if (f.owner) body.user_id = f.owner.id;
    } else {
      body.expires_at = f.expires_at;
    }
    setBusy(true);
    setError(null);
    try {
      const k = props.creating ? await api.post<KeyCreated>('keys', body) : await api.patch<Key>(`keys/${props.keyId}`, body);
      props.onDone(k);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="form" onSubmit={submit} noValidate>
      <Field label={m.name} error={errors.name}>
        {(p) => <input {...p} value={f.name} maxLength={64} onInput={(e) => set('name', e.currentTarget.value)} />}
      </Field>
      {props.creating && props.chooseOwner && (
        <Field label={m.owner} hint={m.ownerHint}>
          {(p) => <UserPicker {...p} value={f.owner} onChange={(u) => set('owner', u)} placeholder={m.ownerSelf} />}
        </Field>
      )}
      <Checkbox label={m.unlimited} checked={f.unlimited} onChange={(v) => set('unlimited', v)} hint={m.unlimitedHint} />
      <Field label={m.quota} error={errors.quota} hint={f.quota !== null ? unitsHint(f.quota) : m.quotaHint}>
        {(p) => <MoneyInput {...p} units={f.quota} onUnits={(u) => set('quota', u)} disabled={f.unlimited} />}
      </Field>
      <Field label={m.expires} error={errors.expires_at} hint={m.expiresHint}>
        {(p) => <input {...p} type="datetime-local" value={toLocalInput(f.expires_at)} onInput={(e) => set('expires_at', fromLocalInput(e.currentTarget.value))} />}
      </Field>
      <ModelPicker legend={m.allowList} value={f.models} onChange={(v) => set('models', v)} />
      <div class="row">
        <Field label={m.rpm} error={errors.rpm_limit} hint={m.limitHint}>
          {(p) => <input {...p} type="number" min="0" step="1" value={f.rpm_limit} onInput={(e) => set('rpm_limit', e.currentTarget.value)} />}
        </Field>
        <Field label={m.tpm} error={errors.tpm_limit} hint={m.limitHint}>
          {(p) => <input {...p} type="number" min="0" step="1" value={f.tpm_limit} onInput={(e) => set('tpm_limit', e.currentTarget.value)} />}
        </Field>
      </div>
      <ErrorNote error={error} />
      <div class="buttons">
        <button type="submit" disabled={busy}>
          {busy ? c.saving : props.creating ? m.create : c.save}
        </button>
      </div>
    </form>
  );
}

/** The new key's secret, shown once, with how to use it. */
function NewSecret(props: { created: KeyCreated; onClose: () => void }) {
  const m = t().keys;
  const base = relayBaseUrl();
  const curl = `curl ${base}/chat/completions \\\n  -H "Authorization: Bearer ${props.created.key}" \\\n  -H "Content-Type: application/json" \\\n  -d '{"model":"…","messages":[{"role":"user","content":"Hi"}]}'`;
  return (
    <Dialog open title={m.secretTitle} onClose={props.onClose} wide>
      <p class="notice">{m.secretOnce}</p>
      <div class="field">
        <label for="new-key-secret">{m.secret}</label>
        <div class="copy-row">
          <input id="new-key-secret" readOnly value={props.created.key} translate={false} class="mono" onFocus={(e) => e.currentTarget.select()} />
          <CopyButton text={props.created.key} label={m.copySecret} />
        </div>
      </div>
      <div class="field">
        <label for="new-key-base">{m.baseUrl}</label>
        <div class="copy-row">
          <input id="new-key-base" readOnly value={base} translate={false} class="mono" />
          <CopyButton text={base} label={m.copyBaseUrl} />
        </div>
        <small class="hint">{m.baseUrlHint}</small>
      </div>
      <details>
        <summary>{m.example}</summary>
        <pre class="code" translate={false} tabIndex={0}>
          {curl}
        </pre>
      </details>
      <div class="buttons">
        <button type="button" onClick={props.onClose}>
          {m.secretDone}
        </button>
      </div>
    </Dialog>
  );
}

export default function KeysPage() {
  const m = t().keys;
  const c = t().common;
  const admin = isAdmin.value;
  const [userFilter, setUserFilter] = useState<UserChoice | null>(null);
  const list = usePagedList<Key>('keys', { user_id: userFilter?.id });
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<Key | null>(null);
  const [deleting, setDeleting] = useState<Key | null>(null);
  const [created, setCreated] = useState<KeyCreated | null>(null);
  const [rowError, setRowError] = useState<unknown>(null);

  const items = list.data?.items ?? [];
  items.forEach((k) => learnDisplay(k.used_quota, k.used_quota_display));

  async function toggle(k: Key) {
    setRowError(null);
    try {
      await api.patch<Key>(`keys/${k.id}`, { enabled: !k.enabled });
      list.reload();
    } catch (e) {
      setRowError(e);
    }
  }

  return (
    <Page
      title={m.title}
      actions={
        <button type="button" onClick={() => setCreating(true)}>
          {m.new}
        </button>
      }
      intro={m.intro}
    >
      <Card>
        <div class="toolbar">
          <SearchBox value={list.q} onInput={list.setQ} label={m.search} />
          {admin && (
            <div class="field inline">
              <label for="keys-user">{m.filterUser}</label>
              <UserPicker
                id="keys-user"
                value={userFilter}
                onChange={(u) => {
                  setUserFilter(u);
                  list.setPage(1);
                }}
                placeholder={c.all}
              />
            </div>
          )}
        </div>
        <ErrorNote error={list.error ?? rowError} />
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
                  {admin && <th scope="col">{m.owner}</th>}
                  <th scope="col">{c.status}</th>
                  <th scope="col" class="num">{m.used}</th>
                  <th scope="col" class="num">{m.remaining}</th>
                  <th scope="col">{m.limits}</th>
                  <th scope="col">{m.expires}</th>
                  <th scope="col">{m.lastUsed}</th>
                  <th scope="col">{c.actions}</th>
                </tr>
              </thead>
              <tbody>
                {items.map((k) => (
                  <tr key={k.id} data-key-id={k.id}>
                    <th scope="row">
                      <Data>{k.name}</Data>
                      <br />
                      <small class="mono muted" translate={false}>
                        {k.prefix}…
                      </small>
                    </th>
                    {admin && (
                      <td>
                        <Data>{k.username}</Data>
                      </td>
                    )}
                    <td>
                      <StateBadge k={k} />
                    </td>
                    <td class="num">{money(k.used_quota_display)}</td>
                    <td class="num">{k.unlimited ? c.unlimited : money(k.remain_quota_display)}</td>
                    <td>
                      <small>
                        {m.rpmShort}: {k.rpm_limit === null ? c.default : k.rpm_limit === 0 ? c.unlimited : num(k.rpm_limit)}
                        <br />
                        {m.tpmShort}: {k.tpm_limit === null ? c.default : k.tpm_limit === 0 ? c.unlimited : num(k.tpm_limit)}
                      </small>
                    </td>
                    <td>{k.expires_at ? dateTime(k.expires_at) : c.never}</td>
                    <td>{k.last_used_at ? dateTime(k.last_used_at) : c.never}</td>
                    <td class="actions">
                      <button type="button" class="secondary small" onClick={() => toggle(k)} aria-label={`${k.enabled ? c.disable : c.enable}: ${k.name}`}>
                        {k.enabled ? c.disable : c.enable}
                      </button>
                      <button type="button" class="secondary small" onClick={() => setEditing(k)} aria-label={`${c.edit}: ${k.name}`}>
                        {c.edit}
                      </button>
                      <button type="button" class="danger small" onClick={() => setDeleting(k)} aria-label={`${c.delete}: ${k.name}`}>
                        {c.delete}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {list.data && list.data.total > 0 && <Pager page={list.page} total={list.data.total} onPage={list.setPage} />}
      </Card>

      <Dialog open={creating} title={m.createTitle} onClose={() => setCreating(false)} wide>
        <KeyForm
          initial={emptyForm()}
          creating
          chooseOwner={admin}
          onDone={(k) => {
            setCreating(false);
            setCreated(k as KeyCreated);
            list.reload();
          }}
        />
      </Dialog>
      <Dialog open={editing !== null} title={m.editTitle} onClose={() => setEditing(null)} wide>
        {editing && (
          <KeyForm
            initial={formOf(editing)}
            creating={false}
            keyId={editing.id}
            onDone={() => {
              setEditing(null);
              list.reload();
            }}
          />
        )}
      </Dialog>
      {created && <NewSecret created={created} onClose={() => setCreated(null)} />}
      <ConfirmDialog
        open={deleting !== null}
        title={m.deleteTitle}
        body={deleting ? m.deleteBody(deleting.name) : ''}
        confirmLabel={c.delete}
        onClose={() => setDeleting(null)}
        onConfirm={async () => {
          if (!deleting) return;
          await api.del(`keys/${deleting.id}`);
          list.reload();
        }}
      />
    </Page>
  );
}
