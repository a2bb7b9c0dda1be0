// Small building blocks shared by the pages.

import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useId, useRef, useState } from 'preact/hooks';
import { ApiError } from '../lib/api';
import { t } from '../lib/i18n';
import { useTitle } from '../lib/hooks';

/** A page: its one `<h1>`, optional actions beside it, and the document title. */
export function Page(props: { title: string; actions?: ComponentChildren; children?: ComponentChildren; intro?: ComponentChildren }) {
  useTitle(props.title);
  return (
    <section class="page">
      <div class="page-head">
        <h1>{props.title}</h1>
        {props.actions && <div class="page-actions">{props.actions}</div>}
      </div>
      {props.intro && <p class="intro">{props.intro}</p>}
      {props.children}
    </section>
  );
}

export function Card(props: { title?: string; children?: ComponentChildren; actions?: ComponentChildren; class?: string; id?: string }) {
  const id = useId();
  return (
    <section class={`card ${props.class ?? ''}`} aria-labelledby={props.title ? id : undefined} id={props.id}>
      {(props.title || props.actions) && (
        <div class="card-head">
          {props.title && <h2 id={id}>{props.title}</h2>}
          {props.actions && <div class="card-actions">{props.actions}</div>}
        </div>
      )}
      {props.children}
    </section>
  );
}

/** A readable message for a failed call, in the current language. */
export function errorText(err: unknown): string {
  const m = t().errors;
  if (err instanceof ApiError) {
    if (err.status === 0) return err.message === 'timeout' ? m.timeout : m.network;
    if (err.status === 429 && err.retryAfterSecs !== null) return m.throttled(err.retryAfterSecs);
    const known: Record<number, string> = { 403: m.forbidden, 404: m.notFound, 409: m.conflict, 503: m.unavailable };
    const base = known[err.status] ?? m.failed(err.status);
    return err.serverMessage ? `${base} ${m.serverSaid}` : base;
  }
  if (err instanceof Error) return m.unexpected;
  return String(err);
}

/** An error box: our sentence, then the server's own words (data: not translated). */
export function ErrorNote(props: { error: unknown; id?: string }) {
  if (!props.error) return null;
  const server = props.error instanceof ApiError ? props.error.serverMessage : null;
  return (
    <p class="alert" role="alert" id={props.id}>
      {errorText(props.error)}
      {server && (
        <>
          {' '}
          <q translate={false} class="server-msg">
            {server}
          </q>
        </>
      )}
    </p>
  );
}

/** While data is on its way: the loading notice, or nothing once an error is shown instead. */
export function Pending(props: { error: unknown }) {
  return props.error ? null : <Loading />;
}

export function Loading() {
  return (
    <p class="muted" role="status">
      {t().common.loading}
    </p>
  );
}

/** A labelled form control with its hint and error wired to aria-describedby. */
export function Field(props: {
  label: string;
  hint?: ComponentChildren;
  error?: string | null;
  children: (p: { id: string; 'aria-describedby'?: string; 'aria-invalid'?: boolean }) => JSX.Element;
  class?: string;
}) {
  const id = useId();
  const hintId = `${id}-hint`;
  const errId = `${id}-err`;
  const described = [props.hint ? hintId : null, props.error ? errId : null].filter(Boolean).join(' ') || undefined;
  return (
    <div class={`field ${props.class ?? ''} ${props.error ? 'has-error' : ''}`}>
      <label for={id}>{props.label}</label>
      {props.children({ id, 'aria-describedby': described, 'aria-invalid': props.error ? true : undefined })}
      {props.hint && (
        <small id={hintId} class="hint">
          {props.hint}
        </small>
      )}
      {props.error && (
        <small id={errId} class="field-error" role="alert">
          {props.error}
        </small>
      )}
    </div>
  );
}

export function Checkbox(props: { label: string; checked: boolean; onChange: (v: boolean) => void; disabled?: boolean; hint?: string }) {
  const id = useId();
  return (
    <div class="check">
      <input id={id} type="checkbox" checked={props.checked} disabled={props.disabled} onChange={(e) => props.onChange(e.currentTarget.checked)} />
      <label for={id}>{props.label}</label>
      {props.hint && <small class="hint">{props.hint}</small>}
    </div>
  );
}

/** A modal dialog (native <dialog>: focus stays inside, Escape closes). */
export function Dialog(props: { title: string; open: boolean; onClose: () => void; children?: ComponentChildren; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (props.open && !d.open) d.showModal();
    if (!props.open && d.open) d.close();
  }, [props.open]);
  return (
    <dialog ref={ref} class={`dialog ${props.wide ? 'wide' : ''}`} aria-labelledby={id} onClose={props.onClose} onCancel={props.onClose}>
      {props.open && (
        <>
          <div class="dialog-head">
            <h2 id={id}>{props.title}</h2>
            <button type="button" class="icon" aria-label={t().common.close} onClick={props.onClose}>
              ×
            </button>
          </div>
          {props.children}
        </>
      )}
    </dialog>
  );
}

/** Asks before doing something that cannot be undone. */
export function ConfirmDialog(props: { open: boolean; title: string; body: string; confirmLabel: string; onConfirm: () => Promise<void>; onClose: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (props.open) setError(null);
  }, [props.open]);
  return (
    <Dialog open={props.open} title={props.title} onClose={props.onClose}>
      <p>{props.body}</p>
      <ErrorNote error={error} />
      <div class="buttons">
        <button type="button" class="secondary" onClick={props.onClose}>
          {t().common.cancel}
        </button>
        <button
          type="button"
          class="danger"
          disabled={busy}
          onClick={async () => {
            setBusy(true);
            try {
              await props.onConfirm();
              props.onClose();
            } catch (e) {
              setError(e);
            } finally {
              setBusy(false);
            }
          }}
        >
          {props.confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}

async function writeClipboard(text: string): Promise<void> {
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch {
      /* not allowed (plain http on another host): fall back below */
    }
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (!ok) throw new Error('copy refused');
}

/** Copies `text`; says so in a live region. */
export function CopyButton(props: { text: string; label?: string; class?: string }) {
  const [state, setState] = useState<'idle' | 'ok' | 'fail'>('idle');
  const m = t().common;
  return (
    <span class="copy">
      <button
        type="button"
        class={props.class ?? 'secondary small'}
        onClick={async () => {
          try {
            await writeClipboard(props.text);
            setState('ok');
          } catch {
            setState('fail');
          }
        }}
      >
        {props.label ?? m.copy}
      </button>
      <span role="status" class="copy-state">
        {state === 'ok' ? m.copied : state === 'fail' ? m.copyFailed : ''}
      </span>
    </span>
  );
}

/** A horizontal bar inside a table cell, for rankings. */
export function InlineBar(props: { value: number; max: number; label: string }) {
  const w = props.max > 0 ? Math.max(0, Math.min(100, (props.value / props.max) * 100)) : 0;
  return (
    <span class="inline-bar" role="img" aria-label={props.label}>
      <span style={{ width: `${w}%` }} />
    </span>
  );
}

export function Badge(props: { kind: 'ok' | 'bad' | 'warn' | 'muted'; children: ComponentChildren }) {
  return <span class={`badge badge-${props.kind}`}>{props.children}</span>;
}

/** A key figure: label and value (with its unit). */
export function Stat(props: { label: string; value: ComponentChildren; note?: ComponentChildren; testid?: string }) {
  return (
    <div class="stat" data-testid={props.testid}>
      <dt>{props.label}</dt>
      <dd>{props.value}</dd>
      {props.note && <dd class="stat-note">{props.note}</dd>}
    </div>
  );
}

/** Data that is not text of ours (names, ids, models): never translated. */
export function Data(props: { children: ComponentChildren; class?: string; title?: string }) {
  return (
    <span translate={false} class={props.class} title={props.title}>
      {props.children}
    </span>
  );
}
