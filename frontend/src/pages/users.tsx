// Users (admin): server-side search and paging; create; edit role, group and enabled; change the
// balance in the display currency (written as a top-up row); delete with confirmation; each
// user's usage over the last 30 days.

import { useMemo, useState } from 'preact/hooks';
import { api } from '../lib/api';
import { date, learnDisplay, money, moneyOfUnits, num } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { t } from '../lib/i18n';
import { me } from '../lib/session';
import { totalsBy } from '../lib/series';
import type { Role, UsageSeries, User } from '../lib/types';
import { Badge, Card, Checkbox, ConfirmDialog, Data, Dialog, ErrorNote, Field, Loading, Page, Pending } from '../components/ui';
import { Pager, SearchBox, usePagedList } from '../components/list';
import { MoneyInput, unitsHint } from '../components/inputs';
import { usageEndNow, usageQuery, ZoneStatement } from '../components/usage';

const USERNAME = /^[\p{L}\p{N}._@-]{1,64}$/u;

function CreateForm(props: { onDone: () => void }) {
  const m = t().users;
  const c = t().common;
  const root = me.value?.role === 'root';
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('user');
  const [group, setGroup] = useState('default');
  const [quota, setQuota] = useState<number | null>(0);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    const errs: Record<string, string> = {};
    if (!USERNAME.test(username.trim())) errs.username = m.usernameRule;
    if (password.length < 8) errs.password = m.passwordRule;
    if (!group.trim()) errs.group = t().errors.required;
    if (quota !== null && quota < 0) errs.quota = t().errors.tooSmall('0');
    setErrors(errs);
    if (Object.keys(errs).length) return;
    setBusy(true);
    setError(null);
    try {
      await api.post('users', { username: username.trim(), password, role, group: group.trim(), quota: quota ?? 0 });
      props.onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="form" onSubmit={submit} noValidate>
      <Field label={m.username} error={errors.username} hint={m.usernameRule}>
        {(p) => <input {...p} name="username" autocomplete="off" value={username} onInput={(e) => setUsername(e.currentTarget.value)} />}
      </Field>
      <Field label={m.password} error={errors.password} hint={m.passwordRule}>
        {(p) => <input {...p} name="password" type="password" autocomplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />}
      </Field>
      <div class="row">
        <Field label={m.role}>
          {(p) => (
            <select {...p} value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
              <option value="user">{t().roles.user}</option>
              {root && <option value="admin">{t().roles.admin}</option>}
            </select>
          )}
        </Field>
        <Field label={c.group} error={errors.group}>
          {(p) => <input {...p} name="group" value={group} onInput={(e) => setGroup(e.currentTarget.value)} />}
        </Field>
      </div>
      <Field label={m.balance} error={errors.quota} hint={unitsHint(quota)}>
        {(p) => <MoneyInput {...p} units={quota} onUnits={setQuota} />}
      </Field>
      <ErrorNote error={error} />
      <div class="buttons">
        <button type="submit" disabled={busy}>
          {busy ? c.saving : m.create}
        </button>
      </div>
    </form>
  );
}

function EditForm(props: { user: User; onDone: () => void }) {
  const m = t().users;
  const c = t().common;
  const u = props.user;
  const root = me.value?.role === 'root';
  const self = me.value?.id === u.id;
  const [role, setRole] = useState<Role>(u.role);
  const [group, setGroup] = useState(u.group);
  const [enabled, setEnabled] = useState(u.enabled);
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    const errs: Record<string, string> = {};
    if (password && password.length < 8) errs.password = m.passwordRule;
    if (!group.trim()) errs.group = t().errors.required;
    setErrors(errs);
    if (Object.keys(errs).length) return;
    const body: Record<string, unknown> = {};
    if (role !== u.role) body.role = role;
    if (group.trim() !== u.group) body.group = group.trim();
    if (enabled !== u.enabled) body.enabled = enabled;
    if (password) body.password = password;
    setBusy(true);
    setError(null);
    try {
      if (Object.keys(body).length) await api.patch(`users/${u.id}`, body);
      props.onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="form" onSubmit={submit} noValidate>
      <p>
        {m.editing} <Data>{u.username}</Data>
      </p>
      <div class="row">
        <Field label={m.role}>
          {(p) => (
            <select {...p} value={role} disabled={u.role === 'root' || !root} onChange={(e) => setRole(e.currentTarget.value as Role)}>
              {u.role === 'root' && <option value="root">{t().roles.root}</option>}
              <option value="user">{t().roles.user}</option>
              <option value="admin">{t().roles.admin}</option>
            </select>
          )}
        </Field>
        <Field label={c.group} error={errors.group}>
          {(p) => <input {...p} value={group} onInput={(e) => setGroup(e.currentTarget.value)} />}
        </Field>
      </div>
      <Checkbox label={c.enabled} checked={enabled} disabled={self} onChange={setEnabled} hint={self ? m.notSelf : m.disableHint} />
      <Field label={m.newPassword} error={errors.password} hint={m.newPasswordHint}>
        {(p) => <input {...p} type="password" autocomplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />}
      </Field>
      <ErrorNote error={error} />
      <div class="buttons">
        <button type="submit" disabled={busy}>
          {busy ? c.saving : c.save}
        </button>
      </div>
    </form>
  );
}

function BalanceForm(props: { user: User; onDone: () => void }) {
  const m = t().users;
  const c = t().common;
  const [delta, setDelta] = useState<number | null>(null);
  const [sign, setSign] = useState<1 | -1>(1);
  const [error, setError] = useState<unknown>(null);
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    if (delta === null || delta <= 0) {
      setFieldError(t().errors.tooSmall(moneyOfUnits(1)));
      return;
    }
    setFieldError(null);
    setBusy(true);
    setError(null);
    try {
      // The API sets the balance; read it just before, so spending meanwhile is not undone.
      const fresh = await api.get<User>(`users/${props.user.id}`);
      const next = fresh.quota + sign * delta;
      if (next < 0) {
        setFieldError(m.belowZero(money(fresh.quota_display)));
        return;
      }
      await api.patch(`users/${props.user.id}`, { quota: next });
      props.onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="form" onSubmit={submit} noValidate>
      <p>
        <Data>{props.user.username}</Data>: {m.balanceNow(money(props.user.quota_display))}
      </p>
      <fieldset>
        <legend>{m.direction}</legend>
        <div class="chips">
          <label class="chip">
            <input type="radio" name="dir" checked={sign === 1} onChange={() => setSign(1)} /> {m.add}
          </label>
          <label class="chip">
            <input type="radio" name="dir" checked={sign === -1} onChange={() => setSign(-1)} /> {m.subtract}
          </label>
        </div>
      </fieldset>
      <Field label={m.amount} error={fieldError} hint={delta !== null ? unitsHint(delta) : m.amountHint}>
        {(p) => <MoneyInput {...p} units={delta} onUnits={setDelta} />}
      </Field>
      <ErrorNote error={error} />
      <div class="buttons">
        <button type="submit" disabled={busy}>
          {busy ? c.saving : m.applyBalance}
        </button>
      </div>
    </form>
  );
}

function UserUsage(props: { user: User }) {
  const m = t().users;
  const [now] = useState(usageEndNow);
  const q = useMemo(() => usageQuery('day', now - 30 * 86_400, now), [now]);
  const data = useLoad((signal) => api.get<UsageSeries>('usage', { ...q.query, user_id: props.user.id, by: 'model' }, signal), [props.user.id, q]);
  const { rows, all } = totalsBy(data.data?.points ?? []);
  return (
    <>
      <p class="hint">
        {m.usageSpan} <ZoneStatement bucket="day" series={data.data} />
      </p>
      <ErrorNote error={data.error} />
      {data.loading ? (
        <Loading />
      ) : rows.length === 0 ? (
        <p class="muted">{t().usage.none}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">{t().common.model}</th>
              <th scope="col" class="num">{t().usage.requests}</th>
              <th scope="col" class="num">{t().usage.errors}</th>
              <th scope="col" class="num">{t().dash.tokens}</th>
              <th scope="col" class="num">{t().usage.spend}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.of}>
                <th scope="row">
                  <Data>{r.of}</Data>
                </th>
                <td class="num">{num(r.requests)}</td>
                <td class="num">{num(r.errors)}</td>
                <td class="num">{num(r.prompt_tokens + r.completion_tokens)}</td>
                <td class="num">{moneyOfUnits(r.quota)}</td>
              </tr>
            ))}
          </tbody>
          <tfoot>
            <tr>
              <th scope="row">{t().common.total}</th>
              <td class="num">{num(all.requests)}</td>
              <td class="num">{num(all.errors)}</td>
              <td class="num">{num(all.prompt_tokens + all.completion_tokens)}</td>
              <td class="num">{moneyOfUnits(all.quota)}</td>
            </tr>
          </tfoot>
        </table>
      )}
    </>
  );
}

export default function UsersPage() {
  const m = t().users;
  const c = t().common;
  const list = usePagedList<User>('users');
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<User | null>(null);
  const [balance, setBalance] = useState<User | null>(null);
  const [usage, setUsage] = useState<User | null>(null);
  const [deleting, setDeleting] = useState<User | null>(null);
  const items = list.data?.items ?? [];
  items.forEach((u) => learnDisplay(u.quota, u.quota_display));
  const myId = me.value?.id;

  return (
    <Page
      title={m.title}
      actions={
        <button type="button" onClick={() => setCreating(true)}>
          {m.new}
        </button>
      }
    >
      <Card>
        <div class="toolbar">
          <SearchBox value={list.q} onInput={list.setQ} label={m.search} />
        </div>
        <ErrorNote error={list.error} />
        {!list.data ? (
          <Pending error={list.error} />
        ) : items.length === 0 ? (
          <p class="muted">{c.noMatch}</p>
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">{m.username}</th>
                  <th scope="col">{m.role}</th>
                  <th scope="col">{c.group}</th>
                  <th scope="col">{c.status}</th>
                  <th scope="col" class="num">{m.balance}</th>
                  <th scope="col" class="num">{m.used}</th>
                  <th scope="col" class="num">{m.requests}</th>
                  <th scope="col">{c.created}</th>
                  <th scope="col">{c.actions}</th>
                </tr>
              </thead>
              <tbody>
                {items.map((u) => (
                  <tr key={u.id} data-user-id={u.id}>
                    <th scope="row">
                      <Data>{u.username}</Data>
                    </th>
                    <td>{t().roles[u.role]}</td>
                    <td>
                      <Data>{u.group}</Data>
                    </td>
                    <td>{u.enabled ? <Badge kind="ok">{c.enabled}</Badge> : <Badge kind="muted">{c.disabled}</Badge>}</td>
                    <td class="num">{money(u.quota_display)}</td>
                    <td class="num">{money(u.used_quota_display)}</td>
                    <td class="num">{num(u.request_count)}</td>
                    <td>{date(u.created_at)}</td>
                    <td class="actions">
                      <button type="button" class="secondary small" onClick={() => setBalance(u)} aria-label={`${m.changeBalance}: ${u.username}`}>
                        {m.changeBalance}
                      </button>
                      <button type="button" class="secondary small" onClick={() => setUsage(u)} aria-label={`${m.usage}: ${u.username}`}>
                        {m.usage}
                      </button>
                      <button type="button" class="secondary small" onClick={() => setEditing(u)} aria-label={`${c.edit}: ${u.username}`}>
                        {c.edit}
                      </button>
                      {u.role !== 'root' && u.id !== myId && (
                        <button type="button" class="danger small" onClick={() => setDeleting(u)} aria-label={`${c.delete}: ${u.username}`}>
                          {c.delete}
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {list.data && list.data.total > 0 && <Pager page={list.page} total={list.data.total} onPage={list.setPage} />}
      </Card>
      <Dialog open={creating} title={m.createTitle} onClose={() => setCreating(false)}>
        <CreateForm
          onDone={() => {
            setCreating(false);
            list.reload();
          }}
        />
      </Dialog>
      <Dialog open={editing !== null} title={m.editTitle} onClose={() => setEditing(null)}>
        {editing && (
          <EditForm
            user={editing}
            onDone={() => {
              setEditing(null);
              list.reload();
            }}
          />
        )}
      </Dialog>
      <Dialog open={balance !== null} title={m.balanceTitle} onClose={() => setBalance(null)}>
        {balance && (
          <BalanceForm
            user={balance}
            onDone={() => {
              setBalance(null);
              list.reload();
            }}
          />
        )}
      </Dialog>
      <Dialog open={usage !== null} title={m.usageTitle} onClose={() => setUsage(null)} wide>
        {usage && (
          <>
            <p>
              <Data>{usage.username}</Data>
            </p>
            <UserUsage user={usage} />
          </>
        )}
      </Dialog>
      <ConfirmDialog
        open={deleting !== null}
        title={m.deleteTitle}
        body={deleting ? m.deleteBody(deleting.username) : ''}
        confirmLabel={c.delete}
        onClose={() => setDeleting(null)}
        onConfirm={async () => {
          if (!deleting) return;
          await api.del(`users/${deleting.id}`);
          list.reload();
        }}
      />
    </Page>
  );
}

