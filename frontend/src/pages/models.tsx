// Models and prices: the models the user's group can call, priced per 1M input and output
// tokens (or per call) in the display currency, with the group's ratio applied. Admins also see
// the raw ratios.

import { useState } from 'preact/hooks';
import { api } from '../lib/api';
import { relayBaseUrl } from '../lib/base';
import { money, num } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { t } from '../lib/i18n';
import { isAdmin } from '../lib/session';
import type { ModelPriceList } from '../lib/types';
import { Badge, Card, CopyButton, Data, ErrorNote, Page, Pending } from '../components/ui';

export default function ModelsPage() {
  const m = t().models;
  const admin = isAdmin.value;
  const data = useLoad((signal) => api.get<ModelPriceList>('models', undefined, signal), []);
  const [filter, setFilter] = useState('');
  const items = (data.data?.items ?? []).filter((x) => x.model.toLowerCase().includes(filter.trim().toLowerCase()));
  const base = relayBaseUrl();
  return (
    <Page title={m.title} intro={m.intro}>
      <Card>
        <div class="toolbar">
          <div class="search">
            <label for="models-filter" class="sr-only">
              {m.filter}
            </label>
            <input id="models-filter" type="search" placeholder={m.filter} value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
          </div>
          {data.data && (
            <p class="muted">
              {m.group} <Data>{data.data.group}</Data>
            </p>
          )}
        </div>
        <ErrorNote error={data.error} />
        {!data.data ? (
          <Pending error={data.error} />
        ) : items.length === 0 ? (
          <p class="muted">{filter ? t().common.noMatch : m.none}</p>
        ) : (
          <div class="table-wrap">
            <table data-testid="models-table">
              <thead>
                <tr>
                  <th scope="col">{t().common.model}</th>
                  <th scope="col">{m.billing}</th>
                  <th scope="col" class="num">{m.input}</th>
                  <th scope="col" class="num">{m.output}</th>
                  <th scope="col" class="num">{m.cacheRead}</th>
                  <th scope="col" class="num">{m.cacheWrite}</th>
                  <th scope="col" class="num">{m.perCall}</th>
                  {admin && <th scope="col" class="num">{m.modelRatio}</th>}
                  {admin && <th scope="col" class="num">{m.completionRatio}</th>}
                  {admin && <th scope="col" class="num">{m.groupRatio}</th>}
                </tr>
              </thead>
              <tbody>
                {items.map((x) => (
                  <tr key={x.model}>
                    <th scope="row">
                      <Data class="mono">{x.model}</Data> {x.unpriced && <Badge kind="warn">{m.unpriced}</Badge>}
                    </th>
                    <td>{x.billing === 'tokens' ? m.byTokens : m.byCall}</td>
                    <td class="num">{x.input_per_1m ? money(x.input_per_1m) : '–'}</td>
                    <td class="num">{x.output_per_1m ? money(x.output_per_1m) : '–'}</td>
                    <td class="num">{x.cache_read_per_1m ? money(x.cache_read_per_1m) : '–'}</td>
                    <td class="num">{x.cache_write_per_1m ? money(x.cache_write_per_1m) : '–'}</td>
                    <td class="num">{x.per_call ? money(x.per_call) : '–'}</td>
                    {admin && <td class="num">{x.model_ratio === undefined ? '–' : num(x.model_ratio, 6)}</td>}
                    {admin && <td class="num">{x.completion_ratio === undefined ? '–' : num(x.completion_ratio, 6)}</td>}
                    {admin && <td class="num">{x.group_ratio === undefined ? '–' : num(x.group_ratio, 6)}</td>}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <p class="hint">{m.pricesHint}</p>
      </Card>
      <Card title={m.useTitle}>
        <p>{m.useBody}</p>
        <div class="copy-row">
          <label for="models-base" class="sr-only">
            {t().keys.baseUrl}
          </label>
          <input id="models-base" readOnly class="mono" value={base} translate={false} />
          <CopyButton text={base} label={t().keys.copyBaseUrl} />
        </div>
      </Card>
    </Page>
  );
}
