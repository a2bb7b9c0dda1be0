// The notification delivery log as a table (the account page and operations).

import { dateTime, num } from '../lib/format';
import { t } from '../lib/i18n';
import type { NotifyDelivery } from '../lib/types';
import { Badge, Data } from './ui';

export function DeliveryTable(props: { items: NotifyDelivery[]; showUser?: boolean }) {
  const m = t().account;
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">{t().logs.col.time}</th>
            {props.showUser && <th scope="col">{t().common.user}</th>}
            <th scope="col">{m.kind}</th>
            <th scope="col">{m.event}</th>
            <th scope="col">{m.target}</th>
            <th scope="col" class="num">{m.attempt}</th>
            <th scope="col">{m.outcome}</th>
            <th scope="col">{m.reason}</th>
          </tr>
        </thead>
        <tbody>
          {props.items.map((d) => (
            <tr key={d.id}>
              <td class="nowrap">{dateTime(d.created_at)}</td>
              {props.showUser && (
                <td>
                  <Data>{d.user_id ?? '–'}</Data>
                </td>
              )}
              <td>{m.kinds[d.kind]}</td>
              <td>{m.events[d.event] ?? <Data>{d.event}</Data>}</td>
              <td>
                <Data>{d.target_host ?? '–'}</Data>
              </td>
              <td class="num">{num(d.attempt)}</td>
              <td>
                <Badge kind={d.outcome === 'sent' ? 'ok' : d.outcome === 'retry' ? 'warn' : 'bad'}>{m.outcomes[d.outcome]}</Badge>
              </td>
              <td>
                <Data>{d.reason ?? ''}</Data>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

