// The console's frame: skip link, header with navigation (role-aware), language and theme
// switches, the first-run banner, and the routed page.

import { ErrorBoundary, LocationProvider, Route, Router, lazy, useLocation } from 'preact-iso';
import { BASE, href, routeOf } from './lib/base';
import { LANGS, lang, setLang, t, type Lang } from './lib/i18n';
import { isAdmin, me, signOut } from './lib/session';
import { setTheme, theme, type ThemeChoice } from './lib/theme';
import { SignIn } from './pages/signin';
import { Loading, Page } from './components/ui';
import { useState } from 'preact/hooks';
import type { ComponentType } from 'preact';

const Dashboard = lazy(() => import('./pages/dashboard'));
const Keys = lazy(() => import('./pages/keys'));
const Logs = lazy(() => import('./pages/logs'));
const Usage = lazy(() => import('./pages/usage'));
const Models = lazy(() => import('./pages/models'));
const Playground = lazy(() => import('./pages/playground'));
const Account = lazy(() => import('./pages/account'));
const Channels = lazy(() => import('./pages/channels'));
const Users = lazy(() => import('./pages/users'));
const Settings = lazy(() => import('./pages/settings'));
const Ops = lazy(() => import('./pages/ops'));

type NavKey = keyof ReturnType<typeof t>['nav'];
interface NavItem {
  key: NavKey;
  path: string;
  admin: boolean;
}

const NAV: NavItem[] = [
  { key: 'dashboard', path: '', admin: false },
  { key: 'keys', path: 'keys', admin: false },
  { key: 'logs', path: 'logs', admin: false },
  { key: 'usage', path: 'usage', admin: false },
  { key: 'models', path: 'models', admin: false },
  { key: 'playground', path: 'playground', admin: false },
  { key: 'channels', path: 'channels', admin: true },
  { key: 'users', path: 'users', admin: true },
  { key: 'settings', path: 'settings', admin: true },
  { key: 'ops', path: 'ops', admin: true },
  { key: 'account', path: 'account', admin: false },
];

const LANG_NAMES: Record<Lang, string> = { en: 'English', 'zh-CN': '中文' };

function Nav() {
  const { path } = useLocation();
  // `/llm/keys` → `/keys/`, `/llm` and `/llm/` → `/`.
  const current = routeOf(path.endsWith('/') ? path : `${path}/`);
  const m = t().nav;
  const admin = isAdmin.value;
  return (
    <nav aria-label={t().shell.mainNav} class="nav">
      <ul>
        {NAV.filter((n) => admin || !n.admin).map((n) => {
          const active = current === (n.path ? `/${n.path}/` : '/');
          return (
            <li key={n.key}>
              <a href={href(n.path)} aria-current={active ? 'page' : undefined}>
                {m[n.key]}
              </a>
            </li>
          );
        })}
      </ul>
    </nav>
  );
}

function Prefs() {
  const m = t().shell;
  return (
    <div class="prefs">
      <label class="sr-only" for="pref-lang">
        {m.language}
      </label>
      <select id="pref-lang" value={lang.value} onChange={(e) => void setLang(e.currentTarget.value as Lang)}>
        {LANGS.map((l) => (
          <option key={l} value={l} lang={l} translate={false}>
            {LANG_NAMES[l]}
          </option>
        ))}
      </select>
      <label class="sr-only" for="pref-theme">
        {m.theme}
      </label>
      <select id="pref-theme" value={theme.value} onChange={(e) => setTheme(e.currentTarget.value as ThemeChoice)}>
        <option value="system">{m.themeSystem}</option>
        <option value="light">{m.themeLight}</option>
        <option value="dark">{m.themeDark}</option>
      </select>
    </div>
  );
}

function UserMenu() {
  const user = me.value;
  const [busy, setBusy] = useState(false);
  if (!user) return null;
  return (
    <div class="user-menu">
      <span class="whoami">
        <span translate={false}>{user.username}</span> <span class="muted">({t().roles[user.role]})</span>
      </span>
      <button
        type="button"
        class="secondary small"
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          try {
            await signOut();
          } finally {
            setBusy(false);
          }
        }}
      >
        {t().shell.signOut}
      </button>
    </div>
  );
}

function FirstRunBanner() {
  const user = me.value;
  if (!user?.must_change_password) return null;
  const m = t().shell;
  return (
    <div class="banner" role="region" aria-label={m.firstRunLabel}>
      <p>
        {m.firstRun} <a href={href('account#password')}>{m.changePassword}</a>
      </p>
    </div>
  );
}

function NotFound() {
  const m = t().notFound;
  return (
    <Page title={m.title}>
      <p>{m.body}</p>
      <p>
        <a href={href('')}>{m.home}</a>
      </p>
    </Page>
  );
}

function AdminOnly(props: { page: ComponentType }) {
  if (!isAdmin.value) {
    const m = t().notFound;
    return (
      <Page title={m.adminTitle}>
        <p>{m.adminBody}</p>
      </Page>
    );
  }
  const P = props.page;
  return <P />;
}

// Stable components (an inline arrow would remount the page on every render of the router).
const ChannelsPage = () => <AdminOnly page={Channels} />;
const UsersPage = () => <AdminOnly page={Users} />;
const SettingsPage = () => <AdminOnly page={Settings} />;
const OpsPage = () => <AdminOnly page={Ops} />;

function Routes() {
  const r = (p: string) => BASE + p;
  return (
    <ErrorBoundary>
      <Router>
        <Route path={r('')} component={Dashboard} />
        <Route path={r('keys')} component={Keys} />
        <Route path={r('logs')} component={Logs} />
        <Route path={r('usage')} component={Usage} />
        <Route path={r('models')} component={Models} />
        <Route path={r('playground')} component={Playground} />
        <Route path={r('account')} component={Account} />
        <Route path={r('channels')} component={ChannelsPage} />
        <Route path={r('users')} component={UsersPage} />
        <Route path={r('settings')} component={SettingsPage} />
        <Route path={r('ops')} component={OpsPage} />
        <Route default component={NotFound} />
      </Router>
    </ErrorBoundary>
  );
}

export function App() {
  const user = me.value;
  const m = t().shell;
  return (
    <LocationProvider scope={BASE}>
      <a class="skip" href="#main">
        {m.skip}
      </a>
      <header class="topbar">
        <a class="brand" href={href('')} translate={false}>
          <img src={`${BASE}favicon.svg`} alt="" width="22" height="22" />
          sluice
        </a>
        {user && <Nav />}
        <div class="topbar-end">
          <Prefs />
          <UserMenu />
        </div>
      </header>
      {user && <FirstRunBanner />}
      <main id="main" class="container" tabIndex={-1}>
        {user === undefined ? <Loading /> : user === null ? <SignIn /> : <Routes />}
      </main>
    </LocationProvider>
  );
}
