// Inputs that convert: money in the display currency ↔ quota units, times ↔ Unix seconds,
// model allow-lists picked from the models the user may call.

import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api';
import { currencyLabel, display, num } from '../lib/format';
import { t } from '../lib/i18n';
import type { ModelPrice, ModelPriceList } from '../lib/types';

/** Quota units → the number typed in the display currency. */
export function unitsToAmount(units: number): number {
  const per = display.value.perUnit;
  return per === null ? units : Math.round(units * per * 1e6) / 1e6;
}

/** The number typed in the display currency → quota units (rounded to whole units). */
export function amountToUnits(amount: number): number {
  const per = display.value.perUnit;
  return per === null ? Math.round(amount) : Math.round(amount / per);
}

/** A money field: typed in the display currency, read and written as quota units. */
export function MoneyInput(props: {
  id: string;
  units: number | null;
  onUnits: (units: number | null) => void;
  'aria-describedby'?: string;
  'aria-invalid'?: boolean;
  disabled?: boolean;
}) {
  const [text, setText] = useState(props.units === null ? '' : String(unitsToAmount(props.units)));
  useEffect(() => {
    const shown = text.trim() === '' ? null : amountToUnits(Number(text));
    if (shown !== props.units) setText(props.units === null ? '' : String(unitsToAmount(props.units)));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.units]);
  return (
    <span class="money-input">
      <input
        id={props.id}
        type="number"
        inputMode="decimal"
        min="0"
        step="any"
        value={text}
        disabled={props.disabled}
        aria-describedby={props['aria-describedby']}
        aria-invalid={props['aria-invalid']}
        onInput={(e) => {
          const v = e.currentTarget.value;
          setText(v);
          const n = Number(v);
          props.onUnits(v.trim() === '' || !Number.isFinite(n) ? null : amountToUnits(n));
        }}
      />
      <span class="suffix" aria-hidden="true">
        {currencyLabel()}
      </span>
    </span>
  );
}

/** `units` as a hint: "= 500,000 quota units". */
export function unitsHint(units: number | null): string {
  if (units === null) return '';
  return `= ${num(units)} ${t().units.quotaUnits}`;
}

/** Unix seconds ↔ the value of an `<input type="datetime-local">` (local time). */
export function toLocalInput(unix: number | null): string {
  if (!unix) return '';
  const d = new Date(unix * 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fromLocalInput(v: string): number | null {
  if (!v) return null;
  const ms = new Date(v).getTime();
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : null;
}

/** The models the signed-in user may call (GET /api/models), loaded once per page. */
let modelsCache: Promise<ModelPrice[]> | null = null;
export function loadModels(): Promise<ModelPrice[]> {
  modelsCache ??= api
    .get<ModelPriceList>('models')
    .then((d) => d.items)
    .catch((e: unknown) => {
      modelsCache = null;
      throw e;
    });
  return modelsCache;
}

export function forgetModels(): void {
  modelsCache = null;
}

/** Checkboxes for an allow-list; none ticked = any model. */
export function ModelPicker(props: { value: string[] | null; onChange: (v: string[] | null) => void; legend: string }) {
  const [models, setModels] = useState<string[] | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    loadModels()
      .then((list) => setModels(list.map((m) => m.model)))
      .catch(() => setFailed(true));
  }, []);
  const chosen = new Set(props.value ?? []);
  // Models already on the key stay choosable even if the user may no longer call them.
  const all = Array.from(new Set([...(models ?? []), ...chosen])).sort();
  const m = t().keys;
  return (
    <fieldset class="model-picker">
      <legend>{props.legend}</legend>
      <small class="hint">{m.modelsHint}</small>
      {failed && <p class="alert">{m.modelsUnavailable}</p>}
      {models === null && !failed && <p class="muted">{t().common.loading}</p>}
      <div class="chips">
        {all.map((name) => (
          <label key={name} class="chip">
            <input
              type="checkbox"
              checked={chosen.has(name)}
              onChange={(e) => {
                const next = new Set(chosen);
                if (e.currentTarget.checked) next.add(name);
                else next.delete(name);
                props.onChange(next.size ? Array.from(next).sort() : null);
              }}
            />
            <span translate={false}>{name}</span>
          </label>
        ))}
      </div>
    </fieldset>
  );
}
