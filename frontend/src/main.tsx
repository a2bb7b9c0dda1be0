import './style.css';
import { render } from 'preact';
import { App } from './app';
import { initLang } from './lib/i18n';
import { loadMe, me } from './lib/session';
import { initTheme } from './lib/theme';

initTheme();
const root = document.getElementById('app');
if (root) {
  // Language first (Chinese loads its own file), then who is signed in; the first check's
  // failure (server down) shows the sign-in form with the reason.
  void initLang()
    .catch(() => undefined)
    .then(() => render(<App />, root));
  loadMe().catch(() => {
    me.value = null;
  });
}
