// Client for the sluice admin API: same origin, cookie session plus the CSRF token on writes.
// Every call is bounded in time and can be cancelled; a 401 ends the session in the UI.

import { href } from './base';

/** A failed API call: HTTP status (0 for network errors/timeouts) and the server's message. */
export class ApiError extends Error {
  readonly status: number;
  readonly serverMessage: string | null;
  /** Per-field messages, when the server names the fields at fault. */
  readonly fields: Record<string, string>;
  readonly retryAfterSecs: number | null;

  constructor(status: number, message: string, serverMessage: string | null = null, fields: Record<string, string> = {}, retryAfterSecs: number | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.serverMessage = serverMessage;
    this.fields = fields;
    this.retryAfterSecs = retryAfterSecs;
  }
}

const TIMEOUT_MS = 30_000;

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export type Query = Record<string, string | number | boolean | null | undefined>;

let csrfToken = '';
let onUnauthorized: () => void = () => {};

export function setCsrf(token: string): void {
  csrfToken = token;
}

/** Called when any call answers 401: the session is over (expired, signed out elsewhere). */
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

/** `api/log?type=2&…` under the console's prefix; empty and null values are left out. */
export function apiUrl(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === undefined || v === null || v === '') continue;
    params.set(k, String(v));
  }
  const qs = params.toString();
  return href('api/' + path.replace(/^\/+/, '')) + (qs ? `?${qs}` : '');
}

interface Options {
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
  /** Answer 401 without ending the session (the sign-in form, the password check). */
  quiet401?: boolean;
}

async function send(method: Method, path: string, opts: Options = {}): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  const init: RequestInit = { method, headers, credentials: 'same-origin' };
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  const timeout = AbortSignal.timeout(TIMEOUT_MS);
  init.signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  try {
    return await fetch(apiUrl(path, opts.query), init);
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError' && opts.signal?.aborted) throw err;
    const timedOut = err instanceof DOMException && err.name === 'TimeoutError';
    throw new ApiError(0, timedOut ? 'timeout' : 'network');
  }
}

async function fail(res: Response, opts: Options): Promise<never> {
  const text = await res.text().catch(() => '');
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: a proxy's error page */
  }
  const err = (data as { error?: { message?: unknown; fields?: unknown } } | null)?.error;
  const message = typeof err?.message === 'string' && err.message.trim() ? err.message : null;
  const fields: Record<string, string> = {};
  if (err?.fields && typeof err.fields === 'object') {
    for (const [k, v] of Object.entries(err.fields as Record<string, unknown>)) fields[k] = String(v);
  }
  const retry = Number.parseInt(res.headers.get('Retry-After') ?? '', 10);
  if (res.status === 401 && !opts.quiet401) onUnauthorized();
  throw new ApiError(res.status, message ?? `HTTP ${res.status}`, message, fields, Number.isFinite(retry) ? retry : null);
}

async function request<T>(method: Method, path: string, opts: Options = {}): Promise<T> {
  const res = await send(method, path, opts);
  if (!res.ok) return fail(res, opts);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  if (text === '') return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(res.status, 'invalid');
  }
}

/** A streamed call (the playground): the raw response once it is known to be OK. */
export async function stream(path: string, body: unknown, signal: AbortSignal): Promise<Response> {
  const res = await send('POST', path, { body, signal });
  if (!res.ok) return fail(res, {});
  return res;
}

export const api = {
  get: <T>(path: string, query?: Query, signal?: AbortSignal) => request<T>('GET', path, { query, signal }),
  post: <T>(path: string, body?: unknown, opts: Omit<Options, 'body'> = {}) => request<T>('POST', path, { ...opts, body }),
  put: <T>(path: string, body?: unknown) => request<T>('PUT', path, { body }),
  patch: <T>(path: string, body?: unknown) => request<T>('PATCH', path, { body }),
  del: <T>(path: string, query?: Query) => request<T>('DELETE', path, { query }),
};
