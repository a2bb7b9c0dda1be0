// A time-series chart drawn by uPlot, which is loaded only when a page draws one. The canvas is
// an image to assistive technology (labelled); the numbers are in the table beside each chart.

import { useEffect, useRef, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import { bucketLabel, num } from '../lib/format';
import { lang, t } from '../lib/i18n';
import { isDark, theme } from '../lib/theme';

export interface ChartSeries {
  label: string;
  values: (number | null)[];
}

const PALETTE = ['#2f6fde', '#e0702a', '#1f9d6b', '#b13fc2', '#d1a21b', '#d33b4f', '#3aa6b9', '#7b5cd6', '#8a8f98'];

/** Axis labels for money: enough significant digits that small amounts do not all read 0. */
export function axisMoney(v: number): string {
  if (v === 0) return '0';
  return Math.abs(v) >= 1 ? num(v, 2) : new Intl.NumberFormat(lang.value, { maximumSignificantDigits: 3 }).format(v);
}

/** Axis labels for counts: whole numbers, or a decimal where the scale is fractional. */
function axisCount(v: number): string {
  return num(v, Number.isInteger(v) ? 0 : 2);
}

let loader: Promise<typeof uPlot> | null = null;
function loadUPlot(): Promise<typeof uPlot> {
  loader ??= Promise.all([import('uplot'), import('uplot/dist/uPlot.min.css')]).then(([m]) => m.default);
  return loader;
}

export function TimeChart(props: {
  label: string;
  times: number[];
  series: ChartSeries[];
  hourly: boolean;
  format?: (v: number) => string;
  height?: number;
  testid?: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [failed, setFailed] = useState(false);
  const dark = theme.value === 'dark' || (theme.value === 'system' && isDark());
  const l = lang.value;

  useEffect(() => {
    let cancelled = false;
    const el = box.current;
    if (!el) return;
    loadUPlot()
      .then((UPlot) => {
        if (cancelled) return;
        plot.current?.destroy();
        const axisColor = dark ? '#c9ced6' : '#3b4350';
        const grid = dark ? '#2c323c' : '#e3e6eb';
        const fmt = props.format ?? axisCount;
        const opts: uPlot.Options = {
          width: Math.max(280, el.clientWidth),
          height: props.height ?? 220,
          legend: { show: true },
          // Room for the last time label, which uPlot centres on the right edge.
          padding: [12, 28, 0, 0],
          cursor: { drag: { x: false, y: false } },
          scales: { x: { time: true } },
          axes: [
            {
              stroke: axisColor,
              grid: { stroke: grid },
              ticks: { stroke: grid },
              values: (_u, splits) => splits.map((s) => bucketLabel(s, props.hourly)),
            },
            { stroke: axisColor, grid: { stroke: grid }, ticks: { stroke: grid }, size: 70, values: (_u, splits) => splits.map((s) => fmt(s)) },
          ],
          series: [
            { label: t().charts.time, value: (_u, v) => (v === null ? '–' : bucketLabel(v, props.hourly)) },
            ...props.series.map((s, i) => ({
              label: s.label,
              stroke: PALETTE[i % PALETTE.length],
              width: 2,
              points: { show: props.times.length < 40 },
              value: (_u: uPlot, v: number | null) => (v === null ? '–' : fmt(v)),
            })),
          ],
        };
        const data = [props.times, ...props.series.map((s) => s.values)] as uPlot.AlignedData;
        plot.current = new UPlot(opts, data, el);
        // Series names are data (models, users, keys): tell the language check and translators.
        el.querySelectorAll('.u-legend .u-series:not(:first-child) .u-label').forEach((n) => n.setAttribute('translate', 'no'));
      })
      .catch(() => !cancelled && setFailed(true));
    return () => {
      cancelled = true;
    };
  }, [props.times, props.series, props.hourly, dark, l]);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(() => {
      const p = plot.current;
      if (p && el.clientWidth > 0 && Math.abs(p.width - el.clientWidth) > 4) p.setSize({ width: el.clientWidth, height: p.height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);

  return (
    <figure class="chart" data-testid={props.testid} data-points={props.times.length}>
      <div ref={box} role="img" aria-label={props.label} class="chart-box" />
      {failed && <p class="alert">{t().errors.chart}</p>}
    </figure>
  );
}
