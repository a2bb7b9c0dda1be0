// Operations (admin): backups (list, make, download) and the hot copy, reconciliation with its
// differences, anomalies, CPU profiles (record, and the flame graph shown here), the log level,
// notification deliveries, and deleting old log rows.

import { useState } from 'preact/hooks';
import { api, apiUrl } from '../lib/api';
import { bytes, dateTime, moneyOfUnits, num, pct } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { me } from '../lib/session';
import { t } from '../lib/i18n';
import type { AnomalyReport, BackupInfo, NotifyDelivery, ProfileInfo, ProfilerStatus, ReconcileReport } from '../lib/types';
import { Badge, Card, Checkbox, ConfirmDialog, Data, ErrorNote, Field, Page, Pending } from '../components/ui';
import { fromLocalInput, toLocalInput } from '../components/inputs';
import { DeliveryTable } from '../components/deliveries';

function Backups() {
  const m = t().ops;
  // Copies of the database hold every secret: only root may download them (the server enforces it).
  const root = me.value?.role === 'root';
  const list = useLoad((signal) => api.get<BackupInfo[]>('backups', undefined, signal), []);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [made, setMade] = useState<BackupInfo | null>(null);
  return (
    <Card
      title={m.backups}
      actions={
        <>
          {root && (
            <a class="button secondary" href={apiUrl('backup/hot-copy')} download>
              {m.hotCopy}
            </a>
          )}
          <button
            type="button"
            disabled={busy}
            onClick={async () => {
              setBusy(true);
              setError(null);
              try {
                setMade(await api.post<BackupInfo>('backups'));
                list.reload();
              } catch (e) {
                setError(e);
              } finally {
                setBusy(false);
              }
            }}
          >
            {busy ? m.backingUp : m.backupNow}
          </button>
        </>
      }
    >
      <p class="hint">
        {m.backupsHint} {!root && m.rootDownloads}
      </p>
      <ErrorNote error={error ?? list.error} />
      {made && (
        <p class={made.integrity === 'ok' ? 'success' : 'alert'} role="status">
          {m.backupMade} <Data>{made.name}</Data>
        </p>
      )}
      {!list.data ? (
        <Pending error={list.error} />
      ) : list.data.length === 0 ? (
        <p class="muted">{m.noBackups}</p>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">{t().common.name}</th>
                <th scope="col">{m.takenAt}</th>
                <th scope="col" class="num">{m.size}</th>
                <th scope="col">{m.integrity}</th>
                <th scope="col" class="num">{m.schema}</th>
                {root && <th scope="col">{t().common.actions}</th>}
              </tr>
            </thead>
            <tbody>
              {list.data.map((b) => (
                <tr key={b.name}>
                  <th scope="row">
                    <Data class="mono">{b.name}</Data>
                  </th>
                  <td>{dateTime(b.created_at)}</td>
                  <td class="num">{bytes(b.bytes)}</td>
                  <td>{b.integrity === 'ok' ? <Badge kind="ok">{m.intact}</Badge> : b.integrity === 'unknown' ? <Badge kind="muted">{m.unknown}</Badge> : <Badge kind="bad">{m.damaged}</Badge>}</td>
                  <td class="num">{num(b.schema_version)}</td>
                  {root && (
                    <td>
                      <a class="button secondary small" href={apiUrl(`backups/${encodeURIComponent(b.name)}`)} download aria-label={`${t().common.download}: ${b.name}`}>
                        {t().common.download}
                      </a>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}

function Reconcile() {
  const m = t().ops;
  const [report, setReport] = useState<ReconcileReport | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  return (
    <Card
      title={m.reconcile}
      actions={
        <button
          type="button"
          disabled={busy}
          onClick={async () => {
            setBusy(true);
            setError(null);
            try {
              setReport(await api.get<ReconcileReport>('reconcile'));
            } catch (e) {
              setError(e);
            } finally {
              setBusy(false);
            }
          }}
        >
          {busy ? m.checking : m.runReconcile}
        </button>
      }
    >
      <p class="hint">{m.reconcileHint}</p>
      <ErrorNote error={error} />
      {report && (
        <>
          <p class={report.clean ? 'success' : 'alert'} role="status" data-testid="reconcile-result">
            {report.clean ? m.clean(num(report.users_checked), num(report.keys_checked)) : m.differences(num(report.differences.length))}
          </p>
          {report.differences.length > 0 && (
            <table>
              <thead>
                <tr>
                  <th scope="col">{m.account}</th>
                  <th scope="col">{t().common.name}</th>
                  <th scope="col">{m.field}</th>
                  <th scope="col" class="num">{m.stored}</th>
                  <th scope="col" class="num">{m.fromLogs}</th>
                </tr>
              </thead>
              <tbody>
                {report.differences.map((d, i) => (
                  <tr key={i}>
                    <td>{d.account === 'user' ? t().common.user : t().logs.col.key}</td>
                    <td>
                      <Data>{d.name}</Data>
                    </td>
                    <td>
                      <Data>{d.field}</Data>
                    </td>
                    <td class="num">{num(d.stored)}</td>
                    <td class="num">{num(d.from_logs)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </Card>
  );
}

function Anomalies() {
  const m = t().ops;
  const report = useLoad((signal) => api.get<AnomalyReport>('anomalies', undefined, signal), []);
  const r = report.data;
  return (
    <Card title={m.anomalies} id="anomalies" actions={<button type="button" class="secondary" onClick={report.reload}>{t().common.refresh}</button>}>
      <ErrorNote error={report.error} />
      {!r ? (
        <Pending error={report.error} />
      ) : r.spenders.length + r.token_divergence.length + r.channels.length === 0 ? (
        <p class="success" role="status">
          {m.noAnomalies}
        </p>
      ) : (
        <>
          {r.spenders.length > 0 && (
            <>
              <h3>{m.spenders}</h3>
              <table>
                <thead>
                  <tr>
                    <th scope="col">{t().common.name}</th>
                    <th scope="col" class="num">{m.lastHour}</th>
                    <th scope="col" class="num">{m.usualHour}</th>
                  </tr>
                </thead>
                <tbody>
                  {r.spenders.map((s) => (
                    <tr key={`${s.account}${s.id}`}>
                      <td>
                        {s.account === 'key' ? t().logs.col.key : t().common.user} <Data>{s.name}</Data>
                      </td>
                      <td class="num">{moneyOfUnits(s.last_hour_quota)}</td>
                      <td class="num">{moneyOfUnits(s.usual_hourly_quota)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
          {r.token_divergence.length > 0 && (
            <>
              <h3>{m.tokenDivergence}</h3>
              <table>
                <thead>
                  <tr>
                    <th scope="col">{t().common.model}</th>
                    <th scope="col" class="num">{m.samples}</th>
                    <th scope="col" class="num">{m.divergence}</th>
                  </tr>
                </thead>
                <tbody>
                  {r.token_divergence.map((d) => (
                    <tr key={d.model}>
                      <td>
                        <Data>{d.model}</Data>
                      </td>
                      <td class="num">{num(d.samples)}</td>
                      <td class="num">{pct(d.divergence)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
          {r.channels.length > 0 && (
            <>
              <h3>{m.channelAnomalies}</h3>
              <table>
                <thead>
                  <tr>
                    <th scope="col">{t().logs.col.channel}</th>
                    <th scope="col" class="num">{t().dash.requests}</th>
                    <th scope="col" class="num">{t().dash.errorRate}</th>
                    <th scope="col">{m.reasons}</th>
                  </tr>
                </thead>
                <tbody>
                  {r.channels.map((c) => (
                    <tr key={c.channel_id}>
                      <td>
                        <Data>#{c.channel_id}</Data>
                      </td>
                      <td class="num">{num(c.requests)}</td>
                      <td class="num">{pct(c.error_rate)}</td>
                      <td>
                        <Data>{c.reasons.join('; ')}</Data>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
        </>
      )}
      <p class="hint">{m.generated(dateTime(r?.generated_at))}</p>
    </Card>
  );
}

function Profiles() {
  const m = t().ops;
  const data = useLoad((signal) => api.get<{ status: ProfilerStatus; profiles: ProfileInfo[] }>('profiles', undefined, signal), []);
  const [secs, setSecs] = useState('5');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [shown, setShown] = useState<string | null>(null);
  const profiles = data.data?.profiles ?? [];
  const current = shown ?? profiles[0]?.name ?? null;
  const n = Number(secs);
  const secsError = !Number.isInteger(n) || n < 1 || n > 600 ? m.secondsRange : null;
  return (
    <Card title={m.profiles}>
      <p class="hint">{m.profilesHint}</p>
      <form
        class="toolbar"
        onSubmit={async (e) => {
          e.preventDefault();
          if (secsError) return;
          setBusy(true);
          setError(null);
          try {
            const info = await api.post<ProfileInfo>('profiles', { seconds: n });
            setShown(info.name);
            data.reload();
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <Field label={m.seconds} error={secsError}>
          {(p) => <input {...p} type="number" min="1" max="600" step="1" value={secs} onInput={(e) => setSecs(e.currentTarget.value)} />}
        </Field>
        <button type="submit" disabled={busy || secsError !== null}>
          {busy ? m.recording : m.record}
        </button>
      </form>
      <ErrorNote error={error ?? data.error} />
      {profiles.length === 0 ? (
        <p class="muted">{m.noProfiles}</p>
      ) : (
        <>
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">{t().common.name}</th>
                  <th scope="col">{m.recorded}</th>
                  <th scope="col">{m.trigger}</th>
                  <th scope="col">{t().common.actions}</th>
                </tr>
              </thead>
              <tbody>
                {profiles.map((p) => (
                  <tr key={p.name}>
                    <th scope="row">
                      <Data class="mono">{p.name}</Data>
                    </th>
                    <td>{dateTime(p.created)}</td>
                    <td>{m.triggers[p.trigger]}</td>
                    <td class="actions">
                      <button type="button" class="secondary small" aria-pressed={current === p.name} onClick={() => setShown(p.name)} aria-label={`${m.show}: ${p.name}`}>
                        {m.show}
                      </button>
                      <a class="button secondary small" href={apiUrl(`profiles/${p.name}.pb`)} download aria-label={`${m.downloadPb}: ${p.name}`}>
                        {m.downloadPb}
                      </a>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {current && (
            <>
              <h3>{m.flameGraph}</h3>
              <p>
                <a href={apiUrl(`profiles/${current}.svg`)} target="_blank" rel="noopener">
                  {m.openFlameGraph}
                </a>
              </p>
              {/* The server sends the SVG with a sandbox CSP: its scripts never run in our origin.
                  It is driven by the mouse (click to zoom); keyboard users open it with the link. */}
              <iframe class="flame" tabIndex={-1} title={m.flameGraphOf(current)} src={apiUrl(`profiles/${current}.svg`)} data-testid="flame-graph" />
            </>
          )}
        </>
      )}
    </Card>
  );
}

function LogLevel() {
  const m = t().ops;
  const level = useLoad((signal) => api.get<{ debug: boolean }>('logging', undefined, signal), []);
  const [error, setError] = useState<unknown>(null);
  return (
    <Card title={m.logLevel}>
      <ErrorNote error={error ?? level.error} />
      {level.data && (
        <Checkbox
          label={m.debug}
          hint={m.debugHint}
          checked={level.data.debug}
          onChange={async (v) => {
            setError(null);
            try {
              const next = await api.put<{ debug: boolean }>('logging', { debug: v });
              level.set(() => next);
            } catch (e) {
              setError(e);
            }
          }}
        />
      )}
    </Card>
  );
}

function AllDeliveries() {
  const m = t().ops;
  const [cursors, setCursors] = useState<number[]>([]);
  const cursor = cursors[cursors.length - 1];
  const list = useLoad((signal) => api.get<{ items: NotifyDelivery[]; next_cursor: number | null }>('notify/deliveries', { limit: 20, cursor }, signal), [cursor]);
  return (
    <Card title={m.deliveries}>
      <ErrorNote error={list.error} />
      {!list.data ? <Pending error={list.error} /> : list.data.items.length === 0 ? <p class="muted">{t().account.noDeliveries}</p> : <DeliveryTable items={list.data.items} showUser />}
      <nav class="pager" aria-label={t().common.pages}>
        <button type="button" class="secondary small" disabled={!cursors.length} onClick={() => setCursors(cursors.slice(0, -1))}>
          {t().common.prev}
        </button>
        <button type="button" class="secondary small" disabled={!list.data?.next_cursor} onClick={() => list.data?.next_cursor && setCursors([...cursors, list.data.next_cursor])}>
          {t().common.next}
        </button>
      </nav>
    </Card>
  );
}

function DeleteLogs() {
  const m = t().ops;
  const [before, setBefore] = useState<number | null>(null);
  const [confirm, setConfirm] = useState(false);
  const [deleted, setDeleted] = useState<number | null>(null);
  const [fieldError, setFieldError] = useState<string | null>(null);
  return (
    <Card title={m.deleteLogs}>
      <p class="hint">{m.deleteLogsHint}</p>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          if (before === null) {
            setFieldError(t().errors.required);
            return;
          }
          setFieldError(null);
          setConfirm(true);
        }}
      >
        <Field label={m.before} error={fieldError}>
          {(p) => <input {...p} type="datetime-local" value={toLocalInput(before)} onInput={(e) => setBefore(fromLocalInput(e.currentTarget.value))} />}
        </Field>
        <button type="submit" class="danger">
          {m.deleteRows}
        </button>
      </form>
      {deleted !== null && (
        <p class="success" role="status">
          {m.deletedRows(num(deleted))}
        </p>
      )}
      <ConfirmDialog
        open={confirm}
        title={m.deleteLogs}
        body={m.deleteConfirm(dateTime(before))}
        confirmLabel={m.deleteRows}
        onClose={() => setConfirm(false)}
        onConfirm={async () => {
          const r = await api.del<{ deleted: number }>('log', { before: before ?? undefined });
          setDeleted(r.deleted);
        }}
      />
    </Card>
  );
}

export default function OpsPage() {
  const m = t().ops;
  return (
    <Page title={m.title}>
      <Backups />
      <div class="grid2">
        <Reconcile />
        <LogLevel />
      </div>
      <Anomalies />
      <Profiles />
      <AllDeliveries />
      <DeleteLogs />
    </Page>
  );
}
