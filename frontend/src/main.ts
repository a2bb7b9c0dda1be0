import './style.css';
import { api, ApiError, type User } from './api';
import { formatUptime } from './format';

const STATUS_POLL_MS = 15_000;
// The CSRF token comes only with the login response; keep it for other tabs and reloads.
// It is useless without the HttpOnly session cookie.
const CSRF_KEY = 'sluice.csrf';

function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing element #${id}`);
  return node as T;
}

function showMessage(node: HTMLElement, message: string | null): void {
  node.textContent = message ?? '';
  node.hidden = message === null;
}

// ---- server status -------------------------------------------------------

const statusVersion = el('status-version');
const statusUptime = el('status-uptime');
const statusHealth = el('status-health');
const statusError = el('status-error');

/** Uptime reported by the server, and when we received it, so the display can tick locally. */
let uptimeBase: { secs: number; at: number } | null = null;

function renderUptime(): void {
  if (!uptimeBase) {
    statusUptime.textContent = '–';
    return;
  }
  const elapsed = (performance.now() - uptimeBase.at) / 1000;
  statusUptime.textContent = formatUptime(uptimeBase.secs + elapsed);
}

function setHealth(healthy: boolean): void {
  statusHealth.textContent = healthy ? 'healthy' : 'unhealthy';
  statusHealth.className = `badge ${healthy ? 'badge-ok' : 'badge-bad'}`;
}

async function refreshStatus(): Promise<void> {
  try {
    const status = await api.status();
    statusVersion.textContent = status.version;
    uptimeBase = { secs: status.uptime_secs, at: performance.now() };
    setHealth(status.healthy === true);
    showMessage(statusError, null);
  } catch (err) {
    uptimeBase = null;
    statusVersion.textContent = '–';
    setHealth(false);
    showMessage(statusError, `Status unavailable: ${err instanceof Error ? err.message : String(err)}`);
  }
  renderUptime();
}

// ---- session -------------------------------------------------------------

const loginForm = el<HTMLFormElement>('login-form');
const loginUsername = el<HTMLInputElement>('login-username');
const loginPassword = el<HTMLInputElement>('login-password');
const loginSubmit = el<HTMLButtonElement>('login-submit');
const loginError = el('login-error');
const session = el('session');
const whoami = el('whoami');
const logoutButton = el<HTMLButtonElement>('logout');
const logoutError = el('logout-error');

/** Bumped on every sign-in/sign-out so a slow initial session check cannot undo it. */
let sessionEpoch = 0;

function showSignedIn(user: User): void {
  whoami.textContent = `Signed in as ${user.username} (${user.role})`;
  loginForm.hidden = true;
  session.hidden = false;
  showMessage(logoutError, null);
}

function showSignedOut(): void {
  localStorage.removeItem(CSRF_KEY);
  whoami.textContent = '';
  session.hidden = true;
  loginForm.hidden = false;
}

function loginFailureMessage(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 401) return err.serverMessage ?? 'Invalid username or password.';
    if (err.status === 429) {
      const wait = err.retryAfterSecs !== null ? ` in ${formatUptime(err.retryAfterSecs)}` : ' later';
      return `Too many sign-in attempts. Try again${wait}.`;
    }
    return err.message;
  }
  return String(err);
}

loginForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const username = loginUsername.value.trim();
  const password = loginPassword.value;
  if (username === '' || password === '') {
    showMessage(loginError, 'Enter a username and a password.');
    return;
  }

  sessionEpoch++;
  loginSubmit.disabled = true;
  showMessage(loginError, null);
  try {
    const { csrf_token } = await api.login(username, password);
    localStorage.setItem(CSRF_KEY, csrf_token);
    loginPassword.value = '';
  } catch (err) {
    loginPassword.value = '';
    showMessage(loginError, loginFailureMessage(err));
    loginPassword.focus();
    loginSubmit.disabled = false;
    return;
  }
  // Confirm the session cookie works before claiming we are signed in.
  try {
    showSignedIn(await api.me());
  } catch (err) {
    showMessage(loginError, `Signed in, but the session could not be confirmed: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    loginSubmit.disabled = false;
  }
});

logoutButton.addEventListener('click', async () => {
  sessionEpoch++;
  logoutButton.disabled = true;
  showMessage(logoutError, null);
  try {
    await api.logout(localStorage.getItem(CSRF_KEY) ?? '');
    showSignedOut();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      showSignedOut(); // the session had already ended
    } else {
      showMessage(logoutError, `Sign-out failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  } finally {
    logoutButton.disabled = false;
  }
});

/** On page load: if the session cookie is still valid, show who is signed in. */
async function restoreSession(): Promise<void> {
  const epoch = sessionEpoch;
  let user: User | null = null;
  try {
    user = await api.me();
  } catch {
    // 401 (not signed in) or server unreachable: show the sign-in form.
  }
  if (epoch !== sessionEpoch) return;
  if (user) showSignedIn(user);
  else showSignedOut();
}

// ---- start ---------------------------------------------------------------

void refreshStatus();
void restoreSession();
setInterval(() => void refreshStatus(), STATUS_POLL_MS);
setInterval(renderUptime, 1_000);
