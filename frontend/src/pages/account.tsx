// Account: the signed-in user's profile, own password change (ends the other sessions and the
// access token), the personal access token, and notification settings with a test button and
// the delivery history.

import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../lib/api';
import { learnDisplay, money, num } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { t } from '../lib/i18n';
import { me, refreshMe } from '../lib/session';
import type { NotifyDelivery, NotifyKind, NotifySettings, NotifyTestReport } from '../lib/types';
import { Card, ConfirmDialog, CopyButton, Data, ErrorNote, Field, Loading, Page } from '../components/ui';
import { DeliveryTable } from '../components/deliveries';
import { MoneyInput, unitsHint } from '../components/inputs';

function Profile() {
  const m = t().account;
  const u = me.value;
  if (!u) return null;
  return (
    <Card title={m.profile}>
      <dl class="facts">
        <div>
          <dt>{t().users.username}</dt>
          <dd>
            <Data>{u.username}</Data>
          </dd>
        </div>
        <div>
          <dt>{t().users.role}</dt>
          <dd>{t().roles[u.role]}</dd>
        </div>
        <div>
          <dt>{t().common.group}</dt>
          <dd>
            <Data>{u.group}</Data>
          </dd>
        </div>
        <div>
          <dt>{t().users.balance}</dt>
          <dd>{money(u.quota_display)}</dd>
        </div>
        <div>
          <dt>{t().users.used}</dt>
          <dd>{money(u.used_quota_display)}</dd>
        </div>
        <div>
          <dt>{t().users.requests}</dt>
          <dd>{num(u.request_count)}</dd>
        </div>
      </dl>
    </Card>
  );
}

function PasswordForm() {
  const m = t().account;
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    const errs: Record<string, string> = {};
    if (!current) errs.current = t().errors.required;
    if (next.length < 8) errs.next = t().users.passwordRule;
    else if (next === current) errs.next = m.samePassword;
    if (again !== next) errs.again = m.mismatch;
    setErrors(errs);
    setDone(false);
    if (Object.keys(errs).length) return;
    setBusy(true);
    setError(null);
    try {
      await api.post('me/password', { current_password: current, new_password: next }, { quiet401: true });
      setCurrent('');
      setNext('');
      setAgain('');
      setDone(true);
      await refreshMe();
    } catch (err) {
      if (err instanceof ApiError && (err.status === 403 || err.status === 401)) setErrors({ current: m.wrongCurrent });
      else setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Card title={m.password} id="password">
      <p class="hint">{m.passwordHint}</p>
      <form class="form" onSubmit={submit} noValidate>
        <Field label={m.currentPassword} error={errors.current}>
          {(p) => <input {...p} name="current_password" type="password" autocomplete="current-password" value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />}
        </Field>
        <Field label={m.newPassword} error={errors.next} hint={t().users.passwordRule}>
          {(p) => <input {...p} name="new_password" type="password" autocomplete="new-password" value={next} onInput={(e) => setNext(e.currentTarget.value)} />}
        </Field>
        <Field label={m.repeatPassword} error={errors.again}>
          {(p) => <input {...p} name="repeat_password" type="password" autocomplete="new-password" value={again} onInput={(e) => setAgain(e.currentTarget.value)} />}
        </Field>
        <ErrorNote error={error} />
        {done && (
          <p class="success" role="status" data-testid="password-changed">
            {m.passwordChanged}
          </p>
        )}
        <div class="buttons">
          <button type="submit" disabled={busy}>
            {busy ? t().common.saving : m.changePassword}
          </button>
        </div>
      </form>
    </Card>
  );
}

function AccessToken() {
  const m = t().account;
  const [token, setToken] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [revoked, setRevoked] = useState(false);
  const [confirm, setConfirm] = useState(false);
  return (
    <Card title={m.token}>
      <p class="hint">{m.tokenHint}</p>
      <ErrorNote error={error} />
      {token && (
        <div class="field">
          <p class="notice">{m.tokenOnce}</p>
          <label for="access-token">{m.token}</label>
          <div class="copy-row">
            <input id="access-token" readOnly class="mono" value={token} translate={false} />
            <CopyButton text={token} label={m.copyToken} />
          </div>
        </div>
      )}
      {revoked && (
        <p class="success" role="status">
          {m.tokenRevoked}
        </p>
      )}
      <div class="buttons">
        <button type="button" class="danger" onClick={() => setConfirm(true)}>
          {m.revokeToken}
        </button>
        <button
          type="button"
          onClick={async () => {
            setError(null);
            setRevoked(false);
            try {
              setToken((await api.post<{ token: string }>('me/access-token')).token);
            } catch (e) {
              setError(e);
            }
          }}
        >
          {m.newToken}
        </button>
      </div>
      <ConfirmDialog
        open={confirm}
        title={m.revokeToken}
        body={m.revokeBody}
        confirmLabel={m.revokeToken}
        onClose={() => setConfirm(false)}
        onConfirm={async () => {
          await api.del('me/access-token');
          setToken(null);
          setRevoked(true);
        }}
      />
    </Card>
  );
}

interface NotifyForm {
  kind: NotifyKind | '';
  threshold: number | null;
  useDefault: boolean;
  email: string;
  webhook_url: string;
  webhook_secret: string;
  bark_url: string;
  gotify_url: string;
  gotify_token: string;
  gotify_priority: string;
}

function formOf(s: NotifySettings): NotifyForm {
  return {
    kind: s.kind ?? '',
    threshold: s.quota_warning_threshold ?? s.effective_threshold,
    useDefault: s.quota_warning_threshold === null,
    email: s.email ?? '',
    webhook_url: s.webhook_url ?? '',
    webhook_secret: '',
    bark_url: s.bark_url ?? '',
    gotify_url: s.gotify_url ?? '',
    gotify_token: '',
    gotify_priority: String(s.gotify_priority),
  };
}

function Notifications() {
  const m = t().account;
  const settings = useLoad((signal) => api.get<NotifySettings>('me/notify', undefined, signal), []);
  const [f, setF] = useState<NotifyForm | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const [test, setTest] = useState<NotifyTestReport | null>(null);
  const [historyTick, setHistoryTick] = useState(0);
  useEffect(() => {
    if (settings.data) {
      learnDisplay(settings.data.effective_threshold, settings.data.effective_threshold_display);
      setF(formOf(settings.data));
    }
  }, [settings.data]);
  if (settings.error) return <ErrorNote error={settings.error} />;
  if (!f || !settings.data) return <Loading />;
  const s = settings.data;
  const set = <K extends keyof NotifyForm>(k: K, v: NotifyForm[K]) => {
    setF((o) => (o ? { ...o, [k]: v } : o));
    setSaved(false);
  };

  async function save(e: Event) {
    e.preventDefault();
    if (!f) return;
    const errs: Record<string, string> = {};
    const need = (k: keyof NotifyForm) => {
      if (!String(f[k]).trim()) errs[k] = t().errors.required;
    };
    if (f.kind === 'email') need('email');
    if (f.kind === 'webhook') need('webhook_url');
    if (f.kind === 'bark') need('bark_url');
    if (f.kind === 'gotify') {
      need('gotify_url');
      if (!s.gotify_token_set) need('gotify_token');
    }
    const prio = Number(f.gotify_priority);
    if (!Number.isInteger(prio) || prio < 0 || prio > 10) errs.gotify_priority = m.priorityRange;
    setErrors(errs);
    if (Object.keys(errs).length) return;
    const body: Record<string, unknown> = {
      kind: f.kind || null,
      quota_warning_threshold: f.useDefault ? null : (f.threshold ?? 0),
      email: f.email.trim() || null,
      webhook_url: f.webhook_url.trim() || null,
      bark_url: f.bark_url.trim() || null,
      gotify_url: f.gotify_url.trim() || null,
      gotify_priority: prio,
    };
    // Secrets are write-only: sent only when typed.
    if (f.webhook_secret) body.webhook_secret = f.webhook_secret;
    if (f.gotify_token) body.gotify_token = f.gotify_token;
    setBusy(true);
    setError(null);
    try {
      const next = await api.put<NotifySettings>('me/notify', body);
      settings.set(() => next);
      setSaved(true);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <form class="form" onSubmit={save} noValidate>
        <Field label={m.kind}>
          {(p) => (
            <select {...p} name="kind" value={f.kind} onChange={(e) => set('kind', e.currentTarget.value as NotifyKind | '')}>
              <option value="">{m.kinds.off}</option>
              <option value="email">{m.kinds.email}</option>
              <option value="webhook">{m.kinds.webhook}</option>
              <option value="bark">{m.kinds.bark}</option>
              <option value="gotify">{m.kinds.gotify}</option>
            </select>
          )}
        </Field>
        {f.kind === 'email' && (
          <Field label={m.email} error={errors.email}>
            {(p) => <input {...p} type="email" autocomplete="email" value={f.email} onInput={(e) => set('email', e.currentTarget.value)} />}
          </Field>
        )}
        {f.kind === 'webhook' && (
          <>
            <Field label={m.webhookUrl} error={errors.webhook_url} hint={m.webhookHint}>
              {(p) => <input {...p} type="url" value={f.webhook_url} onInput={(e) => set('webhook_url', e.currentTarget.value)} />}
            </Field>
            <Field label={m.webhookSecret} hint={s.webhook_secret_set ? m.secretSet : m.secretNotSet}>
              {(p) => <input {...p} type="password" autocomplete="off" value={f.webhook_secret} onInput={(e) => set('webhook_secret', e.currentTarget.value)} />}
            </Field>
          </>
        )}
        {f.kind === 'bark' && (
          <Field label={m.barkUrl} error={errors.bark_url} hint={m.barkHint}>
            {(p) => <input {...p} type="url" value={f.bark_url} onInput={(e) => set('bark_url', e.currentTarget.value)} />}
          </Field>
        )}
        {f.kind === 'gotify' && (
          <>
            <Field label={m.gotifyUrl} error={errors.gotify_url}>
              {(p) => <input {...p} type="url" value={f.gotify_url} onInput={(e) => set('gotify_url', e.currentTarget.value)} />}
            </Field>
            <Field label={m.gotifyToken} error={errors.gotify_token} hint={s.gotify_token_set ? m.secretSet : m.secretNotSet}>
              {(p) => <input {...p} type="password" autocomplete="off" value={f.gotify_token} onInput={(e) => set('gotify_token', e.currentTarget.value)} />}
            </Field>
            <Field label={m.gotifyPriority} error={errors.gotify_priority}>
              {(p) => <input {...p} type="number" min="0" max="10" step="1" value={f.gotify_priority} onInput={(e) => set('gotify_priority', e.currentTarget.value)} />}
            </Field>
          </>
        )}
        <fieldset>
          <legend>{m.threshold}</legend>
          <div class="check">
            <input id="notify-default" type="checkbox" checked={f.useDefault} onChange={(e) => set('useDefault', e.currentTarget.checked)} />
            <label for="notify-default">{m.useDefault}</label>
          </div>
          {!f.useDefault && (
            <Field label={m.thresholdAmount} hint={`${unitsHint(f.threshold)} · ${m.thresholdHint}`}>
              {(p) => <MoneyInput {...p} units={f.threshold} onUnits={(u) => set('threshold', u)} />}
            </Field>
          )}
          <small class="hint">{m.thresholdNow(money(s.effective_threshold_display))}</small>
        </fieldset>
        <ErrorNote error={error} />
        {saved && (
          <p class="success" role="status">
            {t().common.saved}
          </p>
        )}
        <div class="buttons">
          <button
            type="button"
            class="secondary"
            disabled={!s.kind}
            onClick={async () => {
              setError(null);
              setTest(null);
              try {
                setTest(await api.post<NotifyTestReport>('me/notify/test'));
              } catch (err) {
                setError(err);
              } finally {
                setHistoryTick((n) => n + 1);
              }
            }}
          >
            {m.sendTest}
          </button>
          <button type="submit" disabled={busy}>
            {busy ? t().common.saving : t().common.save}
          </button>
        </div>
        {test && (
          <p class={test.ok ? 'success' : 'alert'} role="status">
            {test.ok ? m.testSent : m.testFailed} <Data>{[test.target, test.status ? `HTTP ${test.status}` : null, test.reason].filter(Boolean).join(' · ')}</Data>
          </p>
        )}
      </form>
      <h3>{m.history}</h3>
      <Deliveries tick={historyTick} />
    </>
  );
}

/** The deliveries of notifications sent to the signed-in user. */
function Deliveries(props: { tick: number }) {
  const m = t().account;
  const list = useLoad(async (signal) => (await api.get<{ items: NotifyDelivery[] }>('me/notify/deliveries', { limit: 20 }, signal)).items, [props.tick]);
  if (list.error) return <ErrorNote error={list.error} />;
  if (!list.data) return <Loading />;
  if (list.data.length === 0) return <p class="muted">{m.noDeliveries}</p>;
  return <DeliveryTable items={list.data} />;
}

export default function AccountPage() {
  const m = t().account;
  return (
    <Page title={m.title}>
      <Profile />
      <PasswordForm />
      <AccessToken />
      <Card title={m.notifications}>
        <p class="hint">{m.notificationsHint}</p>
        <Notifications />
      </Card>
    </Page>
  );
}
