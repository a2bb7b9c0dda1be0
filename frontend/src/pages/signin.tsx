// Sign-in: shown on any route while nobody is signed in; the route stays, so the page asked
// for opens after signing in.

import { useRef, useState } from 'preact/hooks';
import { ApiError } from '../lib/api';
import { duration } from '../lib/format';
import { t } from '../lib/i18n';
import { sessionEnded, signIn } from '../lib/session';
import { errorText, Field, Page } from '../components/ui';

export function SignIn() {
  const m = t().signin;
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const passwordRef = useRef<HTMLInputElement>(null);

  async function submit(e: Event) {
    e.preventDefault();
    if (!username.trim() || !password) {
      setError(m.missing);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await signIn(username.trim(), password);
    } catch (err) {
      setPassword('');
      if (err instanceof ApiError && err.status === 401) setError(m.invalid);
      else if (err instanceof ApiError && err.status === 403) setError(m.disabled);
      else if (err instanceof ApiError && err.status === 429) setError(m.throttled(duration(err.retryAfterSecs ?? 300)));
      else setError(errorText(err));
      passwordRef.current?.focus();
    } finally {
      setBusy(false);
    }
  }

  return (
    <Page title={m.title}>
      <div class="card narrow">
        {sessionEnded.value && (
          <p class="notice" role="status">
            {m.ended}
          </p>
        )}
        <form class="form" onSubmit={submit} noValidate>
          <Field label={m.username}>
            {(p) => <input {...p} name="username" autocomplete="username" value={username} onInput={(e) => setUsername(e.currentTarget.value)} required />}
          </Field>
          <Field label={m.password}>
            {(p) => (
              <input
                {...p}
                ref={passwordRef}
                name="password"
                type="password"
                autocomplete="current-password"
                value={password}
                onInput={(e) => setPassword(e.currentTarget.value)}
                required
              />
            )}
          </Field>
          {error && (
            <p class="alert" role="alert" id="signin-error">
              {error}
            </p>
          )}
          <button type="submit" disabled={busy}>
            {m.submit}
          </button>
        </form>
      </div>
    </Page>
  );
}
