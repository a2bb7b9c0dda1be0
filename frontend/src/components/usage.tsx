// Shared by the usage page and the dashboard: the usage query for a span, names for split
// values (ids → names), and the sentence that says which zone the buckets were cut in.

import { useCallback } from 'preact/hooks';
import { api, type Query } from '../lib/api';
import { timeZone, utcOffsetLabel, tzOffsetMinutes } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { t } from '../lib/i18n';
import type { Channel, Key, Paged, User } from '../lib/types';

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

type Named = { id: number; name?: string; username?: string };

/** Split values → names: model names are names already; ids become the user, key or channel name. */
export function useNames(by: SplitBy): (of: string) => string {
  const path = by === 'user' ? 'users' : by === 'key' ? 'keys' : by === 'channel' ? 'channels' : null;
  const list = useLoad(
    async (signal) => {
      if (!path) return null;
      const d = await api.get<Paged<Named> | Named[]>(path, { page_size: 100 }, signal);
      return { path, items: Array.isArray(d) ? d : d.items };
    },
    [path],
  );
  // The list of the split before keeps showing until this split's arrives: its ids are another
  // table's (key 3 is not channel 3), so it names nothing here.
  const items = list.data && list.data.path === path ? list.data.items : [];
  return useCallback(
    (of: string) => {
      if (by === 'model') return of || t().usage.unknownModel;
      const x = items.find((i) => String(i.id) === of) as User | Key | Channel | Named | undefined;
      return (x && (('username' in x && x.username) || ('name' in x && x.name))) || `#${of}`;
    },
    // A new list (a new split, or the same split reloaded) makes new names.
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [by, list.data],
  );
}
