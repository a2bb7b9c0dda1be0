// What every browser test shares: the real sluice binary on a temporary data directory, the
// project's mock upstream (sluice-mock), one headless Chromium, and helpers that wait on
// conditions (never on time). Every wait is bounded, so a broken server fails a test instead of
// hanging it, and every child process is waited on with a timeout when it stops.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '../..');
export const SLUICE_BIN = process.env.SLUICE_BIN ? path.resolve(process.env.SLUICE_BIN) : path.join(REPO, 'target/debug/sluice');
export const MOCK_BIN = process.env.SLUICE_MOCK_BIN ? path.resolve(process.env.SLUICE_MOCK_BIN) : path.join(path.dirname(SLUICE_BIN), 'sluice-mock');
export const CHROMIUM_BIN = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
export const WAIT_MS = 20_000;

/** Server output for error messages: the start (where panics are) and the end. */
export function excerpt(text, head = 20, tail = 30) {
  const lines = text.split('\n');
  if (lines.length <= head + tail) return text;
  return [...lines.slice(0, head), `[... ${lines.length - head - tail} lines ...]`, ...lines.slice(-tail)].join('\n');
}

/** A timer that never keeps the process alive. */
export function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * Starts a child and resolves with the first match of `re` on its stdout (bounded). The child's
 * pipes are drained for its whole life so it never blocks on a full pipe.
 */
export function startProcess(bin, args, { env = {}, re, name }) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const proc = { child, output: '', name };
    process.once('exit', () => child.kill('SIGKILL'));
    let settled = false;
    const finish = (err, m) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve({ ...proc, match: m, get output() { return proc.output; } });
    };
    const timer = setTimeout(() => finish(new Error(`${name} did not start within ${WAIT_MS} ms; output:\n${excerpt(proc.output)}`)), WAIT_MS);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c) => (proc.output += c));
    child.stdout.on('data', (c) => {
      proc.output += c;
      // eslint-disable-next-line no-control-regex
      const m = proc.output.replace(/\x1b\[[0-9;]*m/g, '').match(re);
      if (m) finish(null, m);
    });
    child.on('error', (err) => finish(new Error(`cannot start ${bin}: ${err.message}`)));
    child.on('exit', (code, signal) => finish(new Error(`${name} exited early (code ${code}, signal ${signal}); output:\n${excerpt(proc.output)}`)));
  });
}

/** SIGTERM, then wait (bounded) for the exit; SIGKILL as a last resort. */
export async function stopProcess(proc) {
  const child = proc?.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), delay(WAIT_MS).then(() => true)]);
  if (timedOut) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`${proc.name} did not exit within ${WAIT_MS} ms of SIGTERM`);
  }
}

/** `sluice serve` on a free port; resolves once it logs the address it listens on. */
export async function startSluice(dataDir, env = {}, bin = SLUICE_BIN) {
  const p = await startProcess(bin, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
    env,
    re: /listening on (http:\/\/127\.0\.0\.1:([1-9]\d*))/,
    name: 'sluice',
  });
  return { ...p, baseUrl: p.match[1] };
}

export async function startMock() {
  const p = await startProcess(MOCK_BIN, ['--listen', '127.0.0.1:0'], { re: /listening on (http:\/\/127\.0\.0\.1:([1-9]\d*))/, name: 'sluice-mock' });
  return { ...p, baseUrl: p.match[1] };
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM_BIN,
    headless: true,
    timeout: WAIT_MS,
    // As the machine notes say: without the background-networking flags Chromium tries hosts
    // this closed network refuses.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export function checkTools() {
  assert.ok(existsSync(SLUICE_BIN), `sluice binary not found at ${SLUICE_BIN} (cargo build --bins, or set SLUICE_BIN)`);
  assert.ok(existsSync(MOCK_BIN), `sluice-mock not found at ${MOCK_BIN}`);
  assert.ok(existsSync(CHROMIUM_BIN), `chromium not found at ${CHROMIUM_BIN} (apt-get install chromium, or set CHROMIUM_BIN)`);
}

export async function tempDir(prefix) {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function removeDir(dir) {
  if (dir) await rm(dir, { recursive: true, force: true });
}

export async function readText(file) {
  return (await readFile(file, 'utf8')).trim();
}

// ---- HTTP from the test itself ----------------------------------------------------------

/** A JSON call to the server with a bearer token (access token or API key). */
export async function call(baseUrl, method, urlPath, { token, body, headers = {} } = {}) {
  const res = await fetch(baseUrl + urlPath, {
    method,
    headers: {
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* CSV or empty */
  }
  return { status: res.status, json, text, headers: res.headers };
}

/** Signs in over the API and makes a personal access token (for set-up the test does itself). */
export async function adminToken(baseUrl, username, password) {
  const login = await fetch(`${baseUrl}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password }),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  assert.equal(login.status, 200, `sign-in as ${username}: ${await login.clone().text()}`);
  const cookie = login.headers.get('set-cookie').split(';')[0];
  const { csrf_token } = await login.json();
  const res = await fetch(`${baseUrl}/api/me/access-token`, {
    method: 'POST',
    headers: { Cookie: cookie, 'X-CSRF-Token': csrf_token },
    signal: AbortSignal.timeout(WAIT_MS),
  });
  assert.equal(res.status, 201, 'access token');
  return (await res.json()).token;
}

/** GET with the path sent byte-for-byte (fetch would normalise `%2e%2e` away). */
export function rawGet(baseUrl, rawPath) {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, path: rawPath, method: 'GET', timeout: WAIT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${rawPath} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

// ---- pages ------------------------------------------------------------------------------

/**
 * A fresh browser context (own cookies and storage) and page, recording what must not happen:
 * uncaught errors, console errors, failed requests and HTTP errors. `allow` lists URL parts
 * whose 4xx is expected (the signed-out check of /api/me on the sign-in page).
 */
export async function openPage(browser, t, { baseUrl, viewport = { width: 1280, height: 800 }, colorScheme = 'light', locale = 'en-US', timezoneId } = {}) {
  const context = await browser.newContext({ viewport, colorScheme, locale, timezoneId, acceptDownloads: true });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(baseUrl).origin });
  context.setDefaultTimeout(WAIT_MS);
  context.setDefaultNavigationTimeout(WAIT_MS);
  t?.after(() => context.close());
  const page = await context.newPage();
  const problems = watch(page);
  return { context, page, problems };
}

/** Records page errors, console errors, failed requests and 4xx/5xx answers of a page. */
export function watch(page) {
  const problems = { errors: [], console: [], failed: [], http: [], inflight: 0, expected: [] };
  page.on('pageerror', (e) => problems.errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.console.push(`${m.text()} @ ${m.location()?.url ?? ''}`);
  });
  page.on('request', () => problems.inflight++);
  page.on('requestfinished', () => problems.inflight--);
  page.on('requestfailed', (r) => {
    problems.inflight--;
    const why = r.failure()?.errorText ?? '';
    // A view left before its answer came cancels it: that is the app working as meant.
    if (why !== 'net::ERR_ABORTED') problems.failed.push(`${r.method()} ${r.url()} ${why}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.http.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  return problems;
}

/** Fails with what went wrong on the page (after removing the expected entries). */
export function assertClean(problems, where, { allowHttp = [] } = {}) {
  const allowed = (s) => allowHttp.some((a) => s.includes(a));
  const http = problems.http.filter((s) => !allowed(s));
  // Chromium logs every 4xx as a console error; the expected ones are not errors of the page.
  const consoleErrors = problems.console.filter((s) => !(s.includes('Failed to load resource') && problems.http.some(allowed)));
  assert.deepEqual(problems.errors, [], `${where}: uncaught errors`);
  assert.deepEqual(consoleErrors, [], `${where}: console errors`);
  assert.deepEqual(problems.failed, [], `${where}: failed requests`);
  assert.deepEqual(http, [], `${where}: HTTP errors`);
}

export function resetProblems(problems) {
  problems.errors.length = 0;
  problems.console.length = 0;
  problems.failed.length = 0;
  problems.http.length = 0;
}

/**
 * Waits until the page shows its data: the `<h1>`, no request in flight, and no loading notice.
 * The in-flight count comes from the page's request events; a short run of animation frames with
 * nothing started settles chained requests (a list, then names for it).
 */
export async function settle(page, problems) {
  await page.locator('h1').first().waitFor();
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const busy = problems.inflight > 0 || (await page.locator('[role=status]:text-is("Loading…"), [role=status]:text-is("加载中…")').count()) > 0;
    if (!busy) {
      // Two frames without a new request: the view is done asking.
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      if (problems.inflight === 0) return;
    }
    if (Date.now() > deadline) throw new Error(`page did not settle: ${problems.inflight} requests in flight`);
    await page.waitForEvent('requestfinished', { timeout: 2_000 }).catch(() => undefined);
  }
}

/**
 * Opens the app signed out and signs in through the form. The signed-out check of /api/me (401)
 * is expected: pass the page's `problems` to forget it once signed in.
 */
export async function signIn(page, baseUrl, username, password, { path: where = '', problems } = {}) {
  await page.goto(`${baseUrl}/${where}`);
  await page.locator('input[name=username]').fill(username);
  await page.locator('input[name=password]').fill(password);
  await page.getByRole('button', { name: /^(Sign in|登录)$/ }).click();
  await page.locator('nav.nav').waitFor();
  if (problems) {
    await settle(page, problems);
    resetProblems(problems);
  }
}

/** Waits until `selector`'s trimmed text satisfies `expected` (string = exact, RegExp = match). */
export async function waitForText(page, selector, expected) {
  const spec = expected instanceof RegExp ? { re: expected.source, flags: expected.flags } : { exact: expected };
  try {
    await page.waitForFunction(
      ({ selector, spec }) => {
        const el = document.querySelector(selector);
        if (!el) return false;
        const text = (el.textContent ?? '').trim();
        return spec.exact !== undefined ? text === spec.exact : new RegExp(spec.re, spec.flags).test(text);
      },
      { selector, spec },
      { timeout: WAIT_MS },
    );
  } catch (err) {
    const actual = await page.locator(selector).first().textContent({ timeout: 1_000 }).catch(() => '<missing>');
    throw new Error(`${selector}: expected ${String(expected)}, got ${JSON.stringify(actual)} (${err.message.split('\n')[0]})`);
  }
}

/** Navigates inside the app as a user would (the router handles the click). */
export async function goTo(page, problems, linkName) {
  await page.locator('nav.nav').getByRole('link', { name: linkName, exact: true }).click();
  await settle(page, problems);
}
