// The signed-in account. `undefined` while the first check runs, `null` when signed out.

import { signal, computed } from '@preact/signals';
import { api, ApiError, setCsrf, setUnauthorizedHandler } from './api';
import { learnDisplay } from './format';
import type { Me } from './types';

export const me = signal<Me | null | undefined>(undefined);
export const isAdmin = computed(() => me.value?.role === 'admin' || me.value?.role === 'root');
/** Set when a call answered 401 while signed in: the sign-in form says the session ended. */
export const sessionEnded = signal(false);

function adopt(user: Me): void {
  if (user.csrf_token) setCsrf(user.csrf_token);
  learnDisplay(user.quota, user.quota_display);
  me.value = user;
  sessionEnded.value = false;
}

setUnauthorizedHandler(() => {
  if (me.value) sessionEnded.value = true;
  setCsrf('');
  me.value = null;
});

/** Asks the server who is signed in (the session cookie is HttpOnly). */
export async function loadMe(): Promise<void> {
  try {
    adopt(await api.get<Me>('me'));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) me.value = null;
    else throw err;
  }
}

/** Refreshes the account (balance, first-run flag) after a change. */
export async function refreshMe(): Promise<void> {
  try {
    adopt(await api.get<Me>('me'));
  } catch {
    /* a 401 already signed us out; other failures keep what we had */
  }
}

export async function signIn(username: string, password: string): Promise<void> {
  await api.post('auth/login', { username, password }, { quiet401: true });
  adopt(await api.get<Me>('me'));
}

export async function signOut(): Promise<void> {
  try {
    await api.post('auth/logout');
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) throw err;
  }
  setCsrf('');
  sessionEnded.value = false;
  me.value = null;
}
