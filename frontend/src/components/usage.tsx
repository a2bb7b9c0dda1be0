// Shared by the usage page and the dashboard: the usage query for a span, names for split
// values (from the series' own `names`), and the sentence that says which zone the buckets were cut in.

import type { Query } from '../lib/api';
import { timeZone, utcOffsetLabel, tzOffsetMinutes } from '../lib/format';
import { t } from '../lib/i18n';

export type SplitBy = 'model' | 'user' | 'key' | 'channel';

export interface UsageRange {
  query: Query;
  start: number;
  end: number;
  /** Start of every bucket in the range (hours, or local midnights: days are not all 24 h). */
  buckets: number[];
}

/**
 * The usage query for [start, end): hourly buckets on whole hours; daily buckets from local
 * midnight in the browser's zone (`tz`), so a day here is the day the logs page shows.
 */
/**
 * "Now" as the end of a usage range. The API's end is exclusive and in whole seconds, so the
 * current second is included by ending one second later: a call made in the second the page
 * opened would otherwise be on the logs page (whose presets have no end) but not in usage.
 */
export function usageEndNow(): number {
  return Math.floor(Date.now() / 1000) + 1;
}

export function usageQuery(bucket: 'hour' | 'day', start: number, end: number): UsageRange {
  const buckets: number[] = [];
  if (bucket === 'hour') {
    for (let h = Math.floor(start / 3_600) * 3_600; h < end; h += 3_600) buckets.push(h);
  } else {
    const d = new Date(start * 1000);
    d.setHours(0, 0, 0, 0);
    for (; d.getTime() / 1000 < end; d.setDate(d.getDate() + 1)) buckets.push(d.getTime() / 1000);
  }
  return { query: { bucket, start, end, tz: timeZone() }, start, end, buckets };
}

/** "Days run from midnight to midnight in Asia/Shanghai" or "Hourly buckets, times shown in …". */
export function ZoneStatement(props: { bucket: 'hour' | 'day'; series?: { tz?: string; tz_exact?: boolean } }) {
  const m = t().usage;
  const zone = props.bucket === 'day' ? (props.series?.tz ?? timeZone()) : timeZone();
  return (
    <>
      {props.bucket === 'hour' ? m.zoneHourly : m.zoneDaily}{' '}
      <span translate={false} data-testid="usage-zone">
        {zone} ({utcOffsetLabel(tzOffsetMinutes())})
      </span>
      {props.bucket === 'day' && props.series?.tz_exact === false && <> {m.zoneInexact}</>}
    </>
  );
}

/**
 * Split values → names: model names are names already; a user, key or channel id is named by
 * the `names` its series came with (the API names exactly the ids in the points, however many
 * there are); one without a name (deleted) shows as `#id`. Names and points come in one answer,
 * so a split never shows another split's names.
 */
export function splitLabel(by: SplitBy, names: Record<string, string> | undefined): (of: string) => string {
  return (of: string) => (by === 'model' ? of || t().usage.unknownModel : (names?.[of] ?? `#${of}`));
}
