// Playground: chat with a model the user may call, on the signed-in session (no key to paste),
// streamed, showing time to first token, tokens and cost. Charged to the user like a key of theirs.

import { useEffect, useRef, useState } from 'preact/hooks';
import { stream } from '../lib/api';
import { amountOfUnits, display, learnDisplay, money, ms, num } from '../lib/format';
import { t } from '../lib/i18n';
import { refreshMe } from '../lib/session';
import type { ModelPrice, PlaygroundCost } from '../lib/types';
import { Card, Checkbox, Data, ErrorNote, Field, Page, Stat } from '../components/ui';
import { loadModels } from '../components/inputs';

interface Message {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

interface Figures {
  ttftMs: number | null;
  cost: PlaygroundCost | null;
  totalMs: number | null;
}

/** Reads an SSE body: `data:` chunks of the answer, and the `sluice.cost` event at the end. */
async function readStream(res: Response, onDelta: (text: string) => void, onCost: (c: PlaygroundCost) => void): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let cut: number;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      const payload = data.join('\n');
      if (!payload || payload === '[DONE]') continue;
      let json: unknown;
      try {
        json = JSON.parse(payload);
      } catch {
        continue;
      }
      if (event === 'sluice.cost') onCost(json as PlaygroundCost);
      else {
        const delta = (json as { choices?: { delta?: { content?: string } }[] }).choices?.[0]?.delta?.content;
        if (delta) onDelta(delta);
      }
    }
  }
}

export default function PlaygroundPage() {
  const m = t().playground;
  const [models, setModels] = useState<ModelPrice[] | null>(null);
  const [modelsError, setModelsError] = useState<unknown>(null);
  const [model, setModel] = useState('');
  const [system, setSystem] = useState('');
  const [input, setInput] = useState('');
  const [streaming, setStreaming] = useState(true);
  const [maxTokens, setMaxTokens] = useState('256');
  const [messages, setMessages] = useState<Message[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [inputError, setInputError] = useState<string | null>(null);
  const [figures, setFigures] = useState<Figures | null>(null);
  const abort = useRef<AbortController | null>(null);

  useEffect(() => {
    loadModels()
      .then((list) => {
        setModels(list);
        setModel((cur) => cur || list[0]?.model || '');
      })
      .catch(setModelsError);
    return () => abort.current?.abort();
  }, []);

  async function send(e: Event) {
    e.preventDefault();
    if (!input.trim()) {
      setInputError(t().errors.required);
      return;
    }
    const max = Number(maxTokens);
    if (!Number.isInteger(max) || max < 1) {
      setInputError(null);
      setError(null);
      return;
    }
    setInputError(null);
    const history: Message[] = [...messages, { role: 'user', content: input.trim() }];
    const sent = system.trim() ? [{ role: 'system' as const, content: system.trim() }, ...history] : history;
    setMessages([...history, { role: 'assistant', content: '' }]);
    setInput('');
    setBusy(true);
    setError(null);
    const started = performance.now();
    const fig: Figures = { ttftMs: null, cost: null, totalMs: null };
    setFigures({ ...fig });
    const ctl = new AbortController();
    abort.current = ctl;
    const append = (text: string) => {
      if (fig.ttftMs === null) fig.ttftMs = performance.now() - started;
      setMessages((list) => {
        const copy = list.slice();
        const last = copy[copy.length - 1]!;
        copy[copy.length - 1] = { ...last, content: last.content + text };
        return copy;
      });
      setFigures({ ...fig });
    };
    try {
      const body = { model, messages: sent, stream: streaming, max_tokens: max, ...(streaming ? { stream_options: { include_usage: true } } : {}) };
      const res = await stream('playground/chat/completions', body, ctl.signal);
      if (streaming) {
        await readStream(res, append, (c) => {
          fig.cost = c;
          learnDisplay(c.quota, c.cost);
        });
      } else {
        const json = (await res.json()) as { choices?: { message?: { content?: string } }[]; usage?: { prompt_tokens: number; completion_tokens: number } };
        append(json.choices?.[0]?.message?.content ?? '');
        const quota = Number(res.headers.get('X-Sluice-Quota') ?? 'NaN');
        const ttfb = Number(res.headers.get('X-Sluice-Ttfb-Ms') ?? 'NaN');
        fig.cost = {
          quota: Number.isFinite(quota) ? quota : 0,
          // The header's text is the server's formatting; show the units in this language instead.
          cost: { amount: amountOfUnits(Number.isFinite(quota) ? quota : 0), currency: display.value.currency, symbol: display.value.symbol, text: res.headers.get('X-Sluice-Cost') ?? '' },
          prompt_tokens: json.usage?.prompt_tokens ?? 0,
          completion_tokens: json.usage?.completion_tokens ?? 0,
          ttfb_ms: Number.isFinite(ttfb) ? ttfb : 0,
          latency_ms: Math.round(performance.now() - started),
        };
      }
      fig.totalMs = performance.now() - started;
      setFigures({ ...fig });
      void refreshMe();
    } catch (err) {
      if (!(err instanceof DOMException && err.name === 'AbortError')) setError(err);
      setMessages((list) => (list[list.length - 1]?.content === '' ? list.slice(0, -1) : list));
    } finally {
      setBusy(false);
      abort.current = null;
    }
  }

  const cost = figures?.cost;
  const costText = cost ? money(cost.cost) : '–';

  return (
    <Page
      title={m.title}
      intro={
        <>
          {m.intro} {m.introKey} <code translate={false}>playground</code>
          {t().common.period}
        </>
      }
    >
      <Card>
        <ErrorNote error={modelsError} />
        <div class="row">
          <Field label={t().common.model}>
            {(p) => (
              <select {...p} value={model} onChange={(e) => setModel(e.currentTarget.value)} disabled={!models?.length}>
                {(models ?? []).map((x) => (
                  <option key={x.model} value={x.model} translate={false}>
                    {x.model}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label={m.maxTokens}>
            {(p) => <input {...p} type="number" min="1" step="1" value={maxTokens} onInput={(e) => setMaxTokens(e.currentTarget.value)} />}
          </Field>
          <div class="field">
            <span class="sr-only">{m.stream}</span>
            <Checkbox label={m.stream} checked={streaming} onChange={setStreaming} />
          </div>
        </div>
        {models && models.length === 0 && <p class="muted">{m.noModels}</p>}
        <Field label={m.system} hint={m.systemHint}>
          {(p) => <textarea {...p} rows={2} value={system} onInput={(e) => setSystem(e.currentTarget.value)} />}
        </Field>
      </Card>
      <Card title={m.conversation}>
        <div class="chat" aria-live="polite" data-testid="chat">
          {messages.length === 0 && <p class="muted">{m.empty}</p>}
          {messages.map((msg, i) => (
            <div key={i} class={`msg ${msg.role}`} data-role={msg.role}>
              <span class="who">{msg.role === 'user' ? m.you : m.assistant}</span>
              <Data>{msg.content || (busy && i === messages.length - 1 ? '…' : '')}</Data>
            </div>
          ))}
        </div>
        <form class="form" onSubmit={send} noValidate>
          <Field label={m.message} error={inputError}>
            {(p) => (
              <textarea
                {...p}
                rows={3}
                value={input}
                onInput={(e) => setInput(e.currentTarget.value)}
                onKeyDown={(e) => {
                  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) (e.currentTarget.form as HTMLFormElement | null)?.requestSubmit();
                }}
              />
            )}
          </Field>
          <ErrorNote error={error} />
          <div class="buttons">
            <button type="button" class="secondary" onClick={() => setMessages([])} disabled={busy || messages.length === 0}>
              {m.clear}
            </button>
            {busy && (
              <button type="button" class="secondary" onClick={() => abort.current?.abort()}>
                {m.stop}
              </button>
            )}
            <button type="submit" disabled={busy || !model}>
              {busy ? m.sending : m.send}
            </button>
          </div>
        </form>
      </Card>
      {figures && (
        <dl class="stats" data-testid="playground-figures">
          <Stat label={m.ttft} value={<span data-testid="pg-ttft">{figures.ttftMs === null ? '–' : ms(Math.round(figures.ttftMs))}</span>} note={m.ttftNote} />
          <Stat label={m.ttfb} value={cost ? ms(cost.ttfb_ms) : '–'} note={m.ttfbNote} />
          <Stat label={m.tokens} value={<span data-testid="pg-tokens">{cost ? num(cost.prompt_tokens + cost.completion_tokens) : '–'}</span>} note={cost ? t().logs.tokenSplit(num(cost.prompt_tokens), num(cost.completion_tokens)) : undefined} />
          <Stat label={m.cost} value={<span data-testid="pg-cost">{costText}</span>} note={cost ? `${num(cost.quota)} ${t().units.quotaUnits}` : undefined} />
          <Stat label={m.total} value={figures.totalMs === null ? '–' : ms(Math.round(figures.totalMs))} />
        </dl>
      )}
    </Page>
  );
}
