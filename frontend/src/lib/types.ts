// Shapes of the admin API's answers (src/server/openapi.json is the reference).

/** An amount of quota units in the display currency (option `display.currency`). */
export interface Money {
  amount: number;
  currency: 'USD' | 'CNY' | 'TOKENS' | 'CUSTOM';
  symbol: string;
  text: string;
}

export type Role = 'user' | 'admin' | 'root';

export interface User {
  id: number;
  username: string;
  role: Role;
  group: string;
  quota: number;
  used_quota: number;
  request_count: number;
  enabled: boolean;
  created_at: number;
  quota_display?: Money;
  used_quota_display?: Money;
}

export interface Me extends User {
  csrf_token?: string;
  /** True while the generated first-run password is still in use (root only). */
  must_change_password?: boolean;
}

export interface Key {
  id: number;
  user_id: number;
  name: string;
  prefix: string;
  unlimited: boolean;
  remain_quota: number;
  used_quota: number;
  expires_at: number | null;
  models: string[] | null;
  enabled: boolean;
  created_at: number;
  last_used_at: number | null;
  rpm_limit: number | null;
  tpm_limit: number | null;
  remain_quota_display?: Money;
  used_quota_display?: Money;
  /** The owner's user name. */
  username: string;
}

export interface KeyCreated extends Key {
  key: string;
}

export type ChannelStatus = 'enabled' | 'disabled' | 'auto_disabled';

export interface Channel {
  id: number;
  kind: string;
  name: string;
  base_url: string;
  api_key: string;
  models: string[];
  model_mapping: Record<string, string>;
  groups: string[];
  priority: number;
  weight: number;
  enabled: boolean;
  created_at: number;
  test_model: string | null;
  status: ChannelStatus;
  auto_disabled_at: number | null;
  auto_disabled_reason: string | null;
  test_status: 'ok' | 'error' | null;
  test_http_status: number | null;
  test_latency_ms: number | null;
  tested_at: number | null;
  test_error: string | null;
  key_count: number;
  keys_disabled: number;
  keys: ChannelKey[];
  settings: ChannelSettings;
}

/** One upstream key of a channel, by fingerprint (the key itself is never shown). */
export interface ChannelKey {
  fingerprint: string;
  enabled: boolean;
  disabled_at: number | null;
  disabled_reason: string | null;
}

/** Settings only some kinds take (azure). */
export interface ChannelSettings {
  api_version?: string;
  azure_route?: 'deployments' | 'v1';
  responses_api?: boolean;
}

export interface ChannelTestReport {
  channel_id: number;
  model: string;
  ok: boolean;
  status: number | null;
  latency_ms: number;
  error?: string;
  channel_status: ChannelStatus;
  keys: { fingerprint: string; ok: boolean; status: number | null; error?: string; enabled: boolean }[];
}

export interface ChannelTestRun {
  tested: number;
  passed: number;
  failed: number;
  disabled: number;
  enabled: number;
  results: ChannelTestReport[];
}

/** A page of a searchable list (users, keys, channels). */
export interface Paged<T> {
  items: T[];
  total: number;
  p?: number;
  page_size?: number;
}

export interface LogRow {
  id: number;
  created_at: number;
  type: number;
  request_id: string;
  user_id: number | null;
  username: string | null;
  key_id: number | null;
  key_name: string | null;
  channel_id?: number | null;
  group: string | null;
  model: string | null;
  upstream_model?: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  /** Parts of prompt_tokens read from / written to the prompt cache; of completion_tokens, reasoning. */
  cache_read_tokens?: number;
  cache_write_tokens?: number;
  cache_write_1h_tokens?: number;
  reasoning_tokens?: number;
  quota: number;
  latency_ms: number | null;
  ttfb_ms: number | null;
  is_stream: boolean;
  status: number | null;
  usage_source: string | null;
  content: string | null;
  quota_display?: Money;
}

export interface LogPage {
  items: LogRow[];
  next_cursor: string | null;
}

export interface LogStat {
  requests: number;
  quota: number;
  prompt_tokens: number;
  completion_tokens: number;
  tokens: number;
  rpm: number;
  tpm: number;
  quota_display?: Money;
}

export interface UsagePoint {
  time: number;
  of?: string;
  requests: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  quota: number;
  quota_display?: Money;
}

export interface UsageSeries {
  points: UsagePoint[];
  /** Split by user, key or channel: id → username, key name or channel name, for the ids in `points`. */
  names?: Record<string, string>;
  /** The zone the day buckets were cut in (`UTC` by default; an offset echoed as `+08:00`). */
  tz?: string;
  /** false for a zone with a non-whole-hour offset: days then start at a whole UTC hour. */
  tz_exact?: boolean;
  bucket?: 'hour' | 'day';
  start?: number;
  end?: number | null;
}

export interface UsageTotals {
  requests: number;
  errors: number;
  quota: number;
  quota_display: Money;
  prompt_tokens: number;
  completion_tokens: number;
  tokens: number;
}

export interface RankedUsage {
  of: string;
  name?: string | null;
  requests: number;
  quota: number;
  quota_display: Money;
  tokens: number;
}

export interface ChannelStat {
  channel_id: number;
  name?: string | null;
  requests: number;
  errors: number;
  error_rate: number;
  ttfb_p50_ms: number | null;
  ttfb_p99_ms: number | null;
  latency_p50_ms: number | null;
  latency_p99_ms: number | null;
}

export interface Dashboard {
  range: '24h' | '30d';
  bucket: 'hour' | 'day';
  tz: string;
  tz_exact: boolean;
  start: number;
  end: number;
  scope: 'self' | 'all';
  balance: { quota: number; quota_display: Money; used_quota: number; used_quota_display: Money };
  totals: UsageTotals;
  now: { rpm: number; tpm: number };
  series: UsagePoint[];
  top_models: RankedUsage[];
  top_keys: RankedUsage[];
  admin?: {
    channels: { total: number; enabled: number; disabled: number; auto_disabled: number };
    channel_stats: ChannelStat[];
    anomalies: number;
    database: { healthy: boolean; writer_queue: number };
    in_flight: number;
    streams_in_flight: number;
    version: string;
    uptime_secs: number;
  };
}

export interface Status {
  version: string;
  uptime_secs: number;
  healthy: boolean;
}

export interface Histogram {
  count: number;
  sum_ms: number;
  buckets: [string, number][];
}

export interface Stats {
  in_flight: number;
  relays_in_flight: number;
  streams_in_flight: number;
  retries: number;
  quota_charged: number;
  rate_limited: number;
  uptime_secs: number;
  db: {
    pings_ok: number;
    pings_failed: number;
    last_ping_ms: number;
    healthy: boolean;
    writer_queue: number;
    commits: number;
    commit_latency: Histogram;
  };
  backups: { ok: number; failed: number; last_ok_at: number };
  channels: Record<string, { requests: number; failures: number; ttfb: Histogram; latency: Histogram }>;
  channel_health: {
    enabled: number;
    disabled: number;
    auto_disabled: number;
    tests_passed: number;
    tests_failed: number;
    auto_disabled_total: number;
    auto_enabled_total: number;
  };
}

export type OptionType = 'bool' | 'int' | 'float' | 'string' | 'enum' | 'list' | 'map' | 'secret';

export interface OptionMeta {
  name: string;
  module: string;
  type: OptionType;
  item_type: 'int' | 'float' | 'string' | null;
  enum: string[] | null;
  min: number | null;
  max: number | null;
  max_items: number | null;
  unit: string | null;
  value: unknown;
  default: unknown;
  description: string;
  secret: boolean;
}

export interface BackupInfo {
  name: string;
  bytes: number;
  created_at: number;
  integrity: string;
  schema_version: number;
}

export interface ProfileInfo {
  name: string;
  created: number;
  pb_bytes: number;
  svg_bytes: number;
  trigger: 'auto' | 'manual';
}

export interface ProfilerStatus {
  enabled: boolean;
  monitoring: boolean;
  running: boolean;
  cores: number;
  threshold_percent: number;
  last_sample_percent: number | null;
  last_sample_at: number | null;
  last_profile: string | null;
  last_profile_at: number | null;
  last_error: string | null;
}

export interface ReconcileReport {
  clean: boolean;
  users_checked: number;
  keys_checked: number;
  differences: { account: 'user' | 'key'; id: number; name: string; field: string; stored: number; from_logs: number }[];
}

export interface AnomalyReport {
  generated_at: number;
  thresholds: Record<string, number>;
  spenders: { account: string; id: number; name: string; last_hour_quota: number; usual_hourly_quota: number }[];
  token_divergence: { model: string; samples: number; divergence: number }[];
  channels: { channel_id: number; requests: number; errors: number; error_rate: number; reasons: string[] }[];
}

export type NotifyKind = 'email' | 'webhook' | 'bark' | 'gotify';

export interface NotifySettings {
  kind: NotifyKind | null;
  quota_warning_threshold: number | null;
  effective_threshold: number;
  email: string | null;
  webhook_url: string | null;
  webhook_secret_set: boolean;
  bark_url: string | null;
  gotify_url: string | null;
  gotify_token_set: boolean;
  gotify_priority: number;
  quota_warning_threshold_display?: Money | null;
  effective_threshold_display?: Money;
}

export interface NotifyTestReport {
  ok: boolean;
  kind: string;
  target: string | null;
  outcome: string;
  status: number | null;
  reason: string | null;
}

export interface NotifyDelivery {
  id: number;
  created_at: number;
  user_id: number | null;
  kind: NotifyKind;
  event: string;
  target_host: string | null;
  attempt: number;
  outcome: 'sent' | 'retry' | 'failed' | 'refused';
  status: number | null;
  reason: string | null;
  request_id: string | null;
}

export interface ModelPrice {
  model: string;
  billing: 'tokens' | 'per_call';
  /** Per 1M input / output tokens in the display currency (with the group's ratio). */
  input_per_1m: Money | null;
  output_per_1m: Money | null;
  per_call: Money | null;
  /** Per 1M input tokens read from / written (5 min) to the prompt cache. */
  cache_read_per_1m?: Money | null;
  cache_write_per_1m?: Money | null;
  /** Admins only. */
  model_ratio?: number;
  cache_read_ratio?: number;
  cache_write_ratio?: number;
  cache_write_1h_ratio?: number;
  completion_ratio?: number;
  group_ratio?: number;
  model_price_usd?: number | null;
  unpriced?: boolean;
}

export interface ModelPriceList {
  group: string;
  currency: Money['currency'];
  items: ModelPrice[];
}

/** The `sluice.cost` event that ends a streamed playground answer. */
export interface PlaygroundCost {
  quota: number;
  cost: Money;
  prompt_tokens: number;
  completion_tokens: number;
  ttfb_ms: number;
  latency_ms: number;
}
