// Browser end-to-end test of the web UI against the real sluice binary.
//
//   node --test e2e/          (from frontend/)
//
// Environment:
//   SLUICE_BIN       sluice binary (default: <repo>/target/debug/sluice)
//   CHROMIUM_BIN     chromium executable (default: /usr/bin/chromium)
//
// Every wait is bounded, so a broken server fails the test instead of hanging it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SLUICE_BIN = process.env.SLUICE_BIN
  ? path.resolve(process.env.SLUICE_BIN)
  : path.resolve(HERE, '../../target/debug/sluice');
const CHROMIUM_BIN = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const ROOT_PASSWORD = 'e2e-root-password-123';
const WAIT_MS = 15_000;
const TEST_TIMEOUT_MS = 60_000;

/** The running server: process, base URL, temp dirs and captured output. */
const ctx = {
  /** @type {import('node:child_process').ChildProcess | null} */ server: null,
  baseUrl: '',
  dataDir: '',
  output: '',
  /** @type {import('playwright-core').Browser | null} */ browser: null,
};

/** Server output for error messages: all of it if short, else the start (where panics are) and the end. */
function excerpt(text, head = 20, tail = 20) {
  const lines = text.split('\n');
  if (lines.length <= head + tail) return text;
  return [...lines.slice(0, head), `[... ${lines.length - head - tail} lines ...]`, ...lines.slice(-tail)].join('\n');
}

/** Starts `sluice serve` on a free port and resolves with its base URL once it logs that it is listening. */
function startServer() {
  return new Promise((resolve, reject) => {
    const child = spawn(SLUICE_BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', ctx.dataDir], {
      env: { ...process.env, SLUICE_ROOT_PASSWORD: ROOT_PASSWORD, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    ctx.server = child;
    // If the test runner itself is killed or crashes, do not leave the server behind.
    process.once('exit', () => child.kill('SIGKILL'));

    let stdoutBuf = '';
    let settled = false;
    const finish = (err, url) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(url);
    };
    const timer = setTimeout(
      () => finish(new Error(`sluice did not print "listening on http://..." within ${WAIT_MS} ms; output:\n${excerpt(ctx.output)}`)),
      WAIT_MS,
    );

    // Keep draining both pipes for the server's whole life so it never blocks on a full pipe.
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => (ctx.output += chunk));
    child.stdout.on('data', (chunk) => {
      ctx.output += chunk;
      if (settled) return;
      stdoutBuf += chunk;
      // eslint-disable-next-line no-control-regex
      const plain = stdoutBuf.replace(/\x1b\[[0-9;]*m/g, '');
      const m = plain.match(/listening on (http:\/\/127\.0\.0\.1:(\d+))/);
      if (m && Number(m[2]) > 0) finish(null, m[1]);
    });
    child.on('error', (err) => finish(new Error(`cannot start ${SLUICE_BIN}: ${err.message}`)));
    child.on('exit', (code, signal) =>
      finish(new Error(`sluice exited early (code ${code}, signal ${signal}); output:\n${excerpt(ctx.output)}`)),
    );
  });
}

/** Sends SIGTERM and waits (bounded) for the server to exit; SIGKILL as a last resort. */
async function stopServer() {
  const child = ctx.server;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), sleep(WAIT_MS).then(() => true)]);
  if (timedOut) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`sluice did not exit within ${WAIT_MS} ms of SIGTERM`);
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * GET with the path sent byte-for-byte as given. (fetch()/URL would normalise `%2e%2e`
 * segments away on the client side, so the server would never see the traversal attempt.)
 */
function rawGet(rawPath) {
  const { hostname, port } = new URL(ctx.baseUrl);
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

/** A fresh browser context (own cookies/storage) and page with bounded default timeouts. */
async function newPage(t) {
  assert.ok(ctx.browser, 'browser not started');
  const context = await ctx.browser.newContext();
  context.setDefaultTimeout(WAIT_MS);
  context.setDefaultNavigationTimeout(WAIT_MS);
  t.after(() => context.close());
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err));
  await page.goto(`${ctx.baseUrl}/`, { waitUntil: 'load' });
  return { page, pageErrors };
}

/** Waits until the element's trimmed text satisfies `expected` (string = exact, RegExp = match). */
async function waitForText(page, selector, expected) {
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
    const actual = await page.locator(selector).textContent({ timeout: 1_000 }).catch(() => '<missing>');
    throw new Error(`${selector}: expected ${String(expected)}, got ${JSON.stringify(actual)} (${err.message.split('\n')[0]})`);
  }
}

async function login(page, username, password) {
  await page.fill('#login-username', username);
  await page.fill('#login-password', password);
  await page.click('#login-submit');
}

describe('sluice web UI', { timeout: 5 * TEST_TIMEOUT_MS }, () => {
  before(async () => {
    assert.ok(existsSync(SLUICE_BIN), `sluice binary not found at ${SLUICE_BIN} (build it, or set SLUICE_BIN)`);
    assert.ok(existsSync(CHROMIUM_BIN), `chromium not found at ${CHROMIUM_BIN} (apt-get install chromium, or set CHROMIUM_BIN)`);
    ctx.dataDir = await mkdtemp(path.join(os.tmpdir(), 'sluice-e2e-data-'));
    ctx.baseUrl = await startServer();
    ctx.browser = await chromium.launch({
      executablePath: CHROMIUM_BIN,
      headless: true,
      timeout: WAIT_MS,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      // launch() always uses a fresh temporary --user-data-dir (playwright_chromiumdev_profile-*)
      // and deletes it on close; passing --user-data-dir ourselves is rejected by Playwright.
    });
  });

  after(async () => {
    const errors = [];
    await ctx.browser?.close().catch((e) => errors.push(e));
    await stopServer().catch((e) => errors.push(e));
    if (ctx.dataDir) await rm(ctx.dataDir, { recursive: true, force: true }).catch((e) => errors.push(e));
    if (errors.length) throw errors[0];
  });

  test('status page shows version and health', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const res = await fetch(`${ctx.baseUrl}/api/status`, { signal: AbortSignal.timeout(WAIT_MS) });
    assert.equal(res.status, 200);
    const status = await res.json();
    assert.match(status.version, /^\d+\.\d+\.\d+/);

    const { page, pageErrors } = await newPage(t);
    assert.equal(await page.title(), 'sluice');
    await waitForText(page, '#status-health', 'healthy');
    await waitForText(page, '#status-version', status.version);
    await waitForText(page, '#status-uptime', /^\d+(s|m \d+s|h \d+m|d \d+h)$/);
    assert.equal(await page.locator('#status-error').isVisible(), false, '#status-error should be hidden');
    assert.deepEqual(pageErrors, []);
  });

  test('wrong password shows a login error', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const { page } = await newPage(t);
    await login(page, 'root', 'definitely-not-the-password');
    await page.locator('#login-error').waitFor({ state: 'visible' });
    await waitForText(page, '#login-error', /\S/);
    assert.equal((await page.locator('#whoami').textContent())?.trim() ?? '', '');
    assert.equal(await page.locator('#whoami').isVisible(), false);
  });

  test('root can sign in and sees who they are', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const { page } = await newPage(t);
    await login(page, 'root', ROOT_PASSWORD);
    await waitForText(page, '#whoami', 'Signed in as root (root)');
    assert.equal(await page.locator('#login-error').isVisible(), false);
    assert.equal(await page.locator('#login-form').isVisible(), false);

    // The session survives a reload (HttpOnly cookie + GET /api/me).
    await page.reload({ waitUntil: 'load' });
    await waitForText(page, '#whoami', 'Signed in as root (root)');
  });

  test('sign out ends the session', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const { page } = await newPage(t);
    await login(page, 'root', ROOT_PASSWORD);
    await waitForText(page, '#whoami', 'Signed in as root (root)');
    await page.click('#logout');
    await page.locator('#login-form').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#whoami').isVisible(), false);
    const meStatus = await page.evaluate(async () => (await fetch('/api/me', { credentials: 'same-origin' })).status);
    assert.equal(meStatus, 401, 'GET /api/me after sign-out');
  });

  test('path traversal is rejected with 404', { timeout: TEST_TIMEOUT_MS }, async () => {
    for (const rawPath of [
      '/..%2f..%2fetc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/assets/..%2f..%2f..%2f..%2fetc%2fpasswd',
    ]) {
      const { status, body } = await rawGet(rawPath);
      assert.equal(status, 404, `GET ${rawPath}`);
      assert.doesNotMatch(body, /root:.*:0:0:/, `GET ${rawPath} leaked /etc/passwd`);
    }
  });
});
