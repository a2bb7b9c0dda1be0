// Thin client for the sluice management API (same origin, cookie session).

export interface Status {
  version: string;
  uptime_secs: number;
  healthy: boolean;
}

export interface User {
  id: number;
  username: string;
  role: string;
  group: string;
  quota: number;
  used_quota: number;
}

export interface LoginResponse {
  user: User;
  csrf_token: string;
}

/** A failed API call: HTTP status (0 for network errors/timeouts) and a readable message. */
export class ApiError extends Error {
  readonly status: number;
  /** `error.message` from the response body, if the server sent one. */
  readonly serverMessage: string | null;
  /** Parsed `Retry-After` header (seconds), e.g. on 429. */
  readonly retryAfterSecs: number | null;

  constructor(status: number, message: string, serverMessage: string | null = null, retryAfterSecs: number | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.serverMessage = serverMessage;
    this.retryAfterSecs = retryAfterSecs;
  }
}

const TIMEOUT_MS = 10_000;

async function request<T>(method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const init: RequestInit = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json', ...headers },
    signal: AbortSignal.timeout(TIMEOUT_MS),
  };
  if (body !== undefined) {
    init.headers = { ...init.headers, 'Content-Type': 'application/json' };
    init.body = JSON.stringify(body);
  }

  let res: Response;
  try {
    res = await fetch(path, init);
  } catch (err) {
    const timedOut = err instanceof DOMException && err.name === 'TimeoutError';
    throw new ApiError(0, timedOut ? 'The server did not respond in time.' : 'Could not reach the server.');
  }

  const text = await res.text();
  let data: unknown = null;
  if (text !== '') {
    try {
      data = JSON.parse(text);
    } catch {
      if (res.ok) throw new ApiError(res.status, 'The server sent an invalid response.');
    }
  }

  if (!res.ok) {
    const serverMessage = errorMessage(data);
    const retry = Number.parseInt(res.headers.get('Retry-After') ?? '', 10);
    throw new ApiError(res.status, serverMessage ?? `Request failed (HTTP ${res.status}).`, serverMessage, Number.isFinite(retry) ? retry : null);
  }
  return data as T;
}

/** Extracts `error.message` from an error body like `{"error":{"message":"..."}}`. */
function errorMessage(data: unknown): string | null {
  if (typeof data !== 'object' || data === null) return null;
  const error = (data as { error?: unknown }).error;
  if (typeof error === 'object' && error !== null) {
    const message = (error as { message?: unknown }).message;
    if (typeof message === 'string' && message.trim() !== '') return message;
  }
  return null;
}

export const api = {
  status: () => request<Status>('GET', '/api/status'),
  me: () => request<User>('GET', '/api/me'),
  login: (username: string, password: string) => request<LoginResponse>('POST', '/api/auth/login', { username, password }),
  logout: (csrfToken: string) => request<unknown>('POST', '/api/auth/logout', undefined, { 'X-CSRF-Token': csrfToken }),
};
