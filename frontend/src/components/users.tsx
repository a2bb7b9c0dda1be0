// Choosing an account by typing part of its name: the server searches (`GET /api/users?q=`), so
// a gateway with thousands of users needs no list of them all in the page. A WAI-ARIA 1.2
// combobox: a labelled text input owning a listbox of matches, arrow keys move, Enter picks,
// Escape closes; the input keeps focus throughout, so screen readers follow aria-activedescendant.

import { useId, useState } from 'preact/hooks';
import { api } from '../lib/api';
import { useDebounced, useLoad } from '../lib/hooks';
import { t } from '../lib/i18n';
import type { Paged, User } from '../lib/types';

export interface UserChoice {
  id: number;
  username: string;
}

/** How many matches to offer: enough to pick from, few enough to scan. */
const MATCHES = 10;

export function UserPicker(props: {
  /** The id the label points to (from `Field`, or the caller's own). */
  id: string;
  value: UserChoice | null;
  onChange: (u: UserChoice | null) => void;
  /** Shown when nothing is chosen (e.g. "All" or "Me"). */
  placeholder: string;
  'aria-describedby'?: string;
}) {
  const m = t().common;
  const listId = `${useId()}-list`;
  const [text, setText] = useState(props.value?.username ?? '');
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  const typed = useDebounced(text.trim(), 200);
  const matches = useLoad(
    async (signal) =>
      open && typed !== '' ? (await api.get<Paged<User>>('users', { q: typed, sort: 'username', page_size: MATCHES }, signal)).items : [],
    [open, typed],
  );
  const items = open && typed === text.trim() ? (matches.data ?? []) : [];
  const shown = open && text.trim() !== '';

  function choose(u: UserChoice | null) {
    props.onChange(u);
    setText(u?.username ?? '');
    setOpen(false);
    setActive(-1);
  }

  function onKeyDown(e: KeyboardEvent) {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      setOpen(true);
      if (items.length === 0) return;
      const step = e.key === 'ArrowDown' ? 1 : -1;
      setActive((a) => (a + step + items.length) % items.length);
    } else if (e.key === 'Enter' && shown) {
      // Enter picks the highlighted match, or the only one; it never submits the form half-chosen.
      e.preventDefault();
      const u = items[active] ?? (items.length === 1 ? items[0] : undefined);
      if (u) choose({ id: u.id, username: u.username });
    } else if (e.key === 'Escape' && open) {
      // Closing the list must not close the dialog around it too.
      e.preventDefault();
      e.stopPropagation();
      setOpen(false);
      setText(props.value?.username ?? '');
    }
  }

  function onInput(v: string) {
    setText(v);
    setOpen(true);
    setActive(-1);
    if (v.trim() === '') choose(null);
  }

  return (
    <div class="combo">
      <input
        id={props.id}
        type="text"
        role="combobox"
        autoComplete="off"
        spellcheck={false}
        translate={false}
        aria-autocomplete="list"
        aria-expanded={shown}
        aria-controls={listId}
        aria-activedescendant={shown && active >= 0 && items[active] ? `${listId}-${items[active].id}` : undefined}
        aria-describedby={props['aria-describedby']}
        placeholder={props.placeholder}
        value={text}
        onInput={(e) => onInput(e.currentTarget.value)}
        onKeyDown={onKeyDown}
        onBlur={() => {
          setOpen(false);
          setText(props.value?.username ?? '');
        }}
      />
      <ul id={listId} role="listbox" class="combo-list" hidden={!shown}>
        {items.map((u, i) => (
          <li
            key={u.id}
            id={`${listId}-${u.id}`}
            role="option"
            aria-selected={i === active}
            translate={false}
            // mousedown, not click: the input's blur would close the list before a click lands.
            onMouseDown={(e) => {
              e.preventDefault();
              choose({ id: u.id, username: u.username });
            }}
          >
            {u.username}
          </li>
        ))}
        {shown && matches.data && typed === text.trim() && items.length === 0 && (
          <li role="option" aria-selected={false} aria-disabled="true" class="muted">
            {m.noMatch}
          </li>
        )}
      </ul>
    </div>
  );
}
