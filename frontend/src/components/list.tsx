// Search and paging for the lists of users, keys and channels (server-side: `q`, `p`,
// `page_size`, answered with `items` and `total`).

import { useState } from 'preact/hooks';
import { api, type Query } from '../lib/api';
import { num } from '../lib/format';
import { useDebounced, useLoad, type Loaded } from '../lib/hooks';
import { t } from '../lib/i18n';
import type { Paged } from '../lib/types';

export const PAGE_SIZE = 20;

/** A list answer: the paged shape, or a plain array from a server without paging. */
function normalise<T>(data: Paged<T> | T[], page: number, pageSize: number): Paged<T> {
  if (Array.isArray(data)) {
    return { items: data.slice((page - 1) * pageSize, page * pageSize), total: data.length };
  }
  return data;
}

export interface ListState<T> extends Loaded<Paged<T>> {
  q: string;
  setQ: (q: string) => void;
  page: number;
  setPage: (p: number) => void;
}

/** One request per view: the page of `path` for the search text (debounced) and filters. */
export function usePagedList<T>(path: string, filters: Query = {}, pageSize = PAGE_SIZE): ListState<T> {
  const [q, setQRaw] = useState('');
  const [page, setPage] = useState(1);
  const dq = useDebounced(q.trim(), 300);
  const filterKey = JSON.stringify(filters);
  const loaded = useLoad(
    async (signal) => normalise(await api.get<Paged<T> | T[]>(path, { ...filters, q: dq, p: page, page_size: pageSize }, signal), page, pageSize),
    [path, dq, page, filterKey, pageSize],
  );
  const setQ = (v: string) => {
    setQRaw(v);
    setPage(1);
  };
  return { ...loaded, q, setQ, page, setPage };
}

export function SearchBox(props: { value: string; onInput: (v: string) => void; label: string; placeholder?: string }) {
  return (
    <div class="search">
      <label for="list-search" class="sr-only">
        {props.label}
      </label>
      <input id="list-search" type="search" value={props.value} placeholder={props.placeholder ?? props.label} onInput={(e) => props.onInput(e.currentTarget.value)} />
    </div>
  );
}

export function Pager(props: { page: number; total: number; pageSize?: number; onPage: (p: number) => void }) {
  const m = t().common;
  const size = props.pageSize ?? PAGE_SIZE;
  const pages = Math.max(1, Math.ceil(props.total / size));
  return (
    <nav class="pager" aria-label={m.pages}>
      <button type="button" class="secondary small" disabled={props.page <= 1} onClick={() => props.onPage(props.page - 1)}>
        {m.prev}
      </button>
      <span role="status">{m.pageOf(num(props.page), num(pages), num(props.total))}</span>
      <button type="button" class="secondary small" disabled={props.page >= pages} onClick={() => props.onPage(props.page + 1)}>
        {m.next}
      </button>
    </nav>
  );
}
