// Where the console lives. Served at `/` by sluice itself, or under a sub-path by a reverse
// proxy that strips it (`https://host/llm/` → sluice's `/`). The server cannot know that prefix,
// so the app learns it from the URL its own script was loaded from: index.html refers to
// `./assets/…` and every built chunk sits in `<prefix>assets/`.

function computeBase(): string {
  const here = import.meta.url;
  const at = here.lastIndexOf('/assets/');
  // The dev server serves /src/main.tsx: the app is at the root there.
  return at >= 0 ? new URL(here.slice(0, at + 1)).pathname : '/';
}

/** The path prefix of the console, always ending in `/` (e.g. `/` or `/llm/`). */
export const BASE = computeBase();

/** An app path (`keys`, `logs?type=2`) as a URL path under the prefix. */
export function href(path: string): string {
  return BASE + path.replace(/^\/+/, '');
}

/** The route part of a location path: `/llm/keys` → `/keys`. */
export function routeOf(pathname: string): string {
  if (pathname.startsWith(BASE)) return '/' + pathname.slice(BASE.length);
  return pathname;
}

/** The OpenAI-compatible base URL clients should use with a key, e.g. `https://host/llm/v1`. */
export function relayBaseUrl(): string {
  return location.origin + BASE + 'v1';
}
