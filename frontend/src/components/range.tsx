// A time range with presets (last hour … 30 days) or chosen start and end (local time).

import { useMemo } from 'preact/hooks';
import { t } from '../lib/i18n';
import { zoneLabel } from '../lib/format';
import { fromLocalInput, toLocalInput } from './inputs';

export type Preset = '1h' | '24h' | '7d' | '30d' | 'custom';
export const PRESET_SECS: Record<Exclude<Preset, 'custom'>, number> = { '1h': 3_600, '24h': 86_400, '7d': 7 * 86_400, '30d': 30 * 86_400 };

export interface Range {
  preset: Preset;
  start: number | null;
  end: number | null;
}

/** [start, end) in Unix seconds for the API; a preset is relative to the moment it was picked. */
export function resolveRange(r: Range, now: number): { start: number | null; end: number | null } {
  if (r.preset === 'custom') return { start: r.start, end: r.end };
  return { start: now - PRESET_SECS[r.preset], end: null };
}

/** "Time zone: Asia/Shanghai (UTC+08:00)": beside every time and bucket. */
export function ZoneNote() {
  return (
    <>
      {t().common.zone}: <span translate={false}>{zoneLabel()}</span>
    </>
  );
}

export function RangePicker(props: { value: Range; onChange: (r: Range) => void; idPrefix: string }) {
  const m = t().range;
  const { preset, start, end } = props.value;
  const presets = useMemo(() => ['1h', '24h', '7d', '30d', 'custom'] as const, []);
  return (
    <fieldset class="range">
      <legend>{m.legend}</legend>
      <div class="seg" role="group">
        {presets.map((p) => (
          <button
            key={p}
            type="button"
            class={`seg-btn ${preset === p ? 'on' : ''}`}
            aria-pressed={preset === p}
            onClick={() => {
              if (p === 'custom') {
                const now = Math.floor(Date.now() / 1000);
                props.onChange({ preset: p, start: start ?? now - 86_400, end });
              } else props.onChange({ preset: p, start: null, end: null });
            }}
          >
            {m.presets[p]}
          </button>
        ))}
      </div>
      {preset === 'custom' && (
        <div class="row">
          <div class="field">
            <label for={`${props.idPrefix}-start`}>{m.from}</label>
            <input
              id={`${props.idPrefix}-start`}
              type="datetime-local"
              value={toLocalInput(start)}
              onChange={(e) => props.onChange({ preset, start: fromLocalInput(e.currentTarget.value), end })}
            />
          </div>
          <div class="field">
            <label for={`${props.idPrefix}-end`}>{m.to}</label>
            <input
              id={`${props.idPrefix}-end`}
              type="datetime-local"
              value={toLocalInput(end)}
              onChange={(e) => props.onChange({ preset, start, end: fromLocalInput(e.currentTarget.value) })}
            />
          </div>
        </div>
      )}
      <small class="hint">
        <ZoneNote />
      </small>
    </fieldset>
  );
}
