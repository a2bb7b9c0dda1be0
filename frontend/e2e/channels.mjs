// The channels page beyond creating a channel (console.test.mjs has that): the Responses API
// option of the form, priority and weight edited in the row, the model mapping editor, test all,
// in English and Chinese. Each checks what the server stored and how a call is then relayed.

import assert from 'node:assert/strict';
import { untranslatedWords } from './checks.mjs';
import { assertClean, call, goTo, openPage, signIn } from './harness.mjs';

/** A channel from the API's list by name. */
async function channelNamed(base, token, name) {
  const list = await call(base, 'GET', '/api/channels', { token });
  assert.equal(list.status, 200, list.text);
  const c = list.json.find((x) => x.name === name);
  assert.ok(c, `channel ${name} in the list`);
  return c;
}

/** Gives `models` a price (ratio 1), keeping the prices already set: unpriced models are refused. */
async function price(base, token, models) {
  const opts = await call(base, 'GET', '/api/option', { token });
  assert.equal(opts.status, 200, opts.text);
  const ratio = { ...(opts.json.find((o) => o.name === 'pricing.model_ratio')?.value ?? {}) };
  for (const m of models) ratio[m] = 1;
  const r = await call(base, 'PUT', '/api/option', { token, body: { 'pricing.model_ratio': ratio } });
  assert.equal(r.status, 200, r.text);
}

/** How a Responses call with `key` reached the upstream: 'passed' when the answer is the mock's
 * own Responses object (it echoes max_output_tokens and says temperature 1), 'converted' when
 * sluice built it from a chat completion (neither is known there: both null). */
async function responsesPath(base, key, model) {
  const r = await call(base, 'POST', '/v1/responses', { token: key, body: { model, input: 'hi', max_output_tokens: 4 } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.object, 'response');
  if (r.json.max_output_tokens === 4 && r.json.temperature === 1) return 'passed';
  if (r.json.max_output_tokens === null && r.json.temperature === null) return 'converted';
  throw new Error(`neither the mock's Responses answer nor a converted one: ${r.text}`);
}

/** The form's Responses API checkbox: on by default for openai, off for azure's deployments
 * route, absent for other kinds; unticked, the channel is stored chat-only and a Responses call is
 * converted; an edit of another field keeps it; ticked again, the call is passed through. */
export async function responsesOption(ctx, t, password) {
  const base = ctx.sluice.baseUrl;
  const token = ctx.token;
  const MODEL = 'resp-e2e-model';
  const NAME = 'chat only upstream';
  const LABEL = 'The upstream has the Responses API (/v1/responses)';
  const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base });
  await signIn(page, base, 'root', password, { problems });
  await goTo(page, problems, 'Channels');
  await page.getByRole('button', { name: 'New channel' }).click();
  const form = page.getByRole('dialog', { name: 'New channel' });
  const box = form.getByLabel(LABEL);
  assert.equal(await box.isChecked(), true, 'openai: on by default');
  await form.getByLabel('Kind').selectOption('anthropic');
  assert.equal(await box.count(), 0, 'anthropic channels do not take the option');
  await form.getByLabel('Kind').selectOption('azure');
  assert.equal(await box.isChecked(), false, 'azure deployments route: off by default');
  await form.getByLabel('Route').selectOption('v1');
  assert.equal(await box.isChecked(), true, 'azure v1 route: on by default');
  await form.getByLabel('Kind').selectOption('openai');

  await form.getByLabel('Name', { exact: true }).fill(NAME);
  await form.getByLabel('Base URL').fill(`${ctx.mock.baseUrl}/v1`);
  await form.getByLabel('Upstream API keys').fill('mock-key');
  await form.getByLabel('Models', { exact: true }).fill(MODEL);
  await box.uncheck();
  await form.getByRole('button', { name: 'Create channel' }).click();
  await form.waitFor({ state: 'hidden' });
  let made = await channelNamed(base, token, NAME);
  assert.deepEqual(made.settings, { responses_api: false });

  // Relayed: the Responses call is converted to chat for this channel.
  await price(base, token, [MODEL]);
  assert.equal((await call(base, 'PATCH', '/api/users/1', { token, body: { quota: 50_000_000 } })).status, 200);
  const key = await call(base, 'POST', '/api/keys', { token, body: { name: 'responses e2e', unlimited: true } });
  assert.equal(key.status, 201, key.text);
  assert.equal(await responsesPath(base, key.json.key, MODEL), 'converted');

  // Edit: the box shows the stored value, and saving another field keeps it.
  const row = page.locator('tr', { hasText: NAME });
  await row.getByRole('button', { name: `Edit: ${NAME}` }).click();
  const edit = page.getByRole('dialog', { name: 'Edit channel' });
  assert.equal(await edit.getByLabel(LABEL).isChecked(), false);
  await edit.getByLabel('Test model').fill(MODEL);
  await edit.getByRole('button', { name: 'Save', exact: true }).click();
  await edit.waitFor({ state: 'hidden' });
  made = await channelNamed(base, token, NAME);
  assert.equal(made.test_model, MODEL);
  assert.deepEqual(made.settings, { responses_api: false }, 'kept by an edit of another field');

  // Ticked again: back to the default (stored as no setting), and the call is passed through.
  await row.getByRole('button', { name: `Edit: ${NAME}` }).click();
  await edit.getByLabel(LABEL).check();
  await edit.getByRole('button', { name: 'Save', exact: true }).click();
  await edit.waitFor({ state: 'hidden' });
  made = await channelNamed(base, token, NAME);
  assert.deepEqual(made.settings, {});
  assert.equal(await responsesPath(base, key.json.key, MODEL), 'passed');
  assertClean(problems, 'responses option');

  // In Chinese: the option and its hint are translated.
  const zh = await openPage(ctx.browser, t, { baseUrl: base, locale: 'zh-CN' });
  await signIn(zh.page, base, 'root', password, { path: 'channels?lang=zh-CN', problems: zh.problems });
  await zh.page.getByRole('button', { name: '新建渠道' }).click();
  const zform = zh.page.getByRole('dialog', { name: '新建渠道' });
  assert.equal(await zform.getByLabel('上游支持 Responses API（/v1/responses）').isChecked(), true);
  await zform.getByText(/^关闭时，sluice 把发往此渠道的 Responses 调用转换为/).waitFor();
  assert.deepEqual(await untranslatedWords(zh.page), [], 'untranslated with the form open');
  assertClean(zh.problems, 'responses option zh-CN');
}

/** Priority and weight edited in the row (Enter and leaving the field), a model mapping added in
 * the editor and used by a call, and Test all with its summary and each row's result. */
export async function channelRows(ctx, t, password) {
  const base = ctx.sluice.baseUrl;
  const token = ctx.token;
  const NAME = 'row edited';
  const c = await call(base, 'POST', '/api/channels', {
    token,
    body: { name: NAME, base_url: `${ctx.mock.baseUrl}/v1`, api_key: 'mock-key', models: ['row-model'] },
  });
  assert.equal(c.status, 201, c.text);
  const id = c.json.id;
  const { page, problems } = await openPage(ctx.browser, t, { baseUrl: base });
  await signIn(page, base, 'root', password, { problems });
  await goTo(page, problems, 'Channels');
  const row = page.locator(`tr[data-channel-id="${id}"]`);

  // In the row: priority saved on Enter, weight when the field loses focus.
  const priority = row.getByLabel(`Priority: ${NAME}`);
  await priority.fill('7');
  await priority.press('Enter');
  await page.waitForFunction(async (u) => (await (await fetch(u)).json()).find((x) => x.name === 'row edited')?.priority === 7, 'api/channels');
  const weight = row.getByLabel(`Weight: ${NAME}`);
  await weight.fill('3');
  await weight.blur();
  await page.waitForFunction(async (u) => (await (await fetch(u)).json()).find((x) => x.name === 'row edited')?.weight === 3, 'api/channels');
  // A weight below 0 is not sent: the field goes back to the stored value.
  await weight.fill('-2');
  await weight.blur();
  await page.waitForFunction((sel) => document.querySelector(sel)?.value === '3', `tr[data-channel-id="${id}"] input[aria-label="Weight: ${NAME}"]`);
  const stored = await channelNamed(base, token, NAME);
  assert.equal(stored.priority, 7);
  assert.equal(stored.weight, 3);

  // The mapping editor: a row added, filled, saved; a call for the requested name goes upstream
  // under the mapped one (the log row's upstream model).
  await row.getByRole('button', { name: `Edit: ${NAME}` }).click();
  const edit = page.getByRole('dialog', { name: 'Edit channel' });
  await edit.getByRole('button', { name: 'Add a mapping' }).click();
  await edit.getByLabel('Requested model').fill('row-model');
  await edit.getByLabel('Name sent upstream').fill('gpt-4o-mini');
  await edit.getByRole('button', { name: 'Save', exact: true }).click();
  await edit.waitFor({ state: 'hidden' });
  assert.deepEqual((await channelNamed(base, token, NAME)).model_mapping, { 'row-model': 'gpt-4o-mini' });
  await price(base, token, ['row-model']);
  assert.equal((await call(base, 'PATCH', '/api/users/1', { token, body: { quota: 50_000_000 } })).status, 200);
  const key = await call(base, 'POST', '/api/keys', { token, body: { name: 'mapping e2e', unlimited: true } });
  assert.equal(key.status, 201, key.text);
  const chat = await call(base, 'POST', '/v1/chat/completions', { token: key.json.key, body: { model: 'row-model', messages: [{ role: 'user', content: 'hi' }] } });
  assert.equal(chat.status, 200, chat.text);
  const rid = chat.headers.get('x-request-id');
  const logged = await call(base, 'GET', `/api/log?request_id=${rid}`, { token });
  assert.equal(logged.json.items.length, 1, logged.text);
  assert.equal(logged.json.items[0].model, 'row-model');
  assert.equal(logged.json.items[0].upstream_model, 'gpt-4o-mini');
  // An incomplete mapping row is refused in the form, at the editor.
  await row.getByRole('button', { name: `Edit: ${NAME}` }).click();
  await edit.getByRole('button', { name: 'Add a mapping' }).click();
  await edit.getByRole('button', { name: 'Save', exact: true }).click();
  await edit.getByText('Fill in both names, or remove the row.').waitFor();
  await edit.getByRole('button', { name: 'Remove mapping 2' }).click();
  await edit.getByRole('button', { name: 'Close' }).click();
  await edit.waitFor({ state: 'hidden' });

  // Test all: the summary counts every channel, and this row shows its result.
  const all = (await call(base, 'GET', '/api/channels', { token })).json.filter((x) => x.status !== 'disabled');
  await page.getByRole('button', { name: 'Test all' }).click();
  const summary = page.getByRole('status').filter({ hasText: /^Tested / });
  await summary.waitFor();
  const [, tested, passed, failed] = /^Tested (\d+): (\d+) passed, (\d+) failed\.$/.exec((await summary.textContent()).trim()) ?? [];
  assert.equal(Number(tested), all.length, `${await summary.textContent()}`);
  assert.equal(Number(passed) + Number(failed), Number(tested));
  await row.getByText('Passed').waitFor();
  const tested1 = await channelNamed(base, token, NAME);
  assert.equal(tested1.test_status, 'ok');
  assert.ok(tested1.tested_at > 0 && tested1.test_latency_ms >= 0);
  assertClean(problems, 'channel rows');
}
