//! What each option does, in one line each: the text the options page and the JSON schema
//! show. A test in `settings` keeps this list and [`Options`](super::Options) in step.

/// One line per option: what it does. A test keeps this list and [`Options`](super::Options) in step.
pub const DESCRIPTIONS: &[(&str, &str)] = &[
    (
        "pricing.model_ratio",
        "Price per model: ratio 1 = $2 per 1M prompt tokens (model → ratio).",
    ),
    (
        "pricing.completion_ratio",
        "Completion tokens cost this many times prompt tokens (model → ratio).",
    ),
    (
        "pricing.group_ratio",
        "Multiplier per user group (group → ratio).",
    ),
    (
        "pricing.model_price",
        "Per-call price in USD; a model listed here is billed per call (model → USD).",
    ),
    (
        "pricing.cache_read_ratio",
        "Cached input tokens read cost this many times an uncached input token (model → ratio; 1 when not listed).",
    ),
    (
        "pricing.cache_write_ratio",
        "Input tokens written to a 5-minute prompt cache cost this many times an uncached one (model → ratio; 1.25 when not listed).",
    ),
    (
        "pricing.cache_write_1h_ratio",
        "Input tokens written to a 1-hour prompt cache cost this many times an uncached one (model → ratio; 2 when not listed).",
    ),
    (
        "pricing.allow_unpriced_models",
        "Relay models with no ratio at ratio 1 instead of refusing them.",
    ),
    (
        "relay.connect_timeout_ms",
        "Time allowed to connect to a channel before trying the next (ms).",
    ),
    (
        "relay.first_byte_timeout_ms",
        "Time from sending a request to the response headers (ms).",
    ),
    (
        "relay.idle_timeout_ms",
        "Longest silence between two body chunks from upstream (ms).",
    ),
    (
        "relay.retries",
        "Further channels tried after a failure that sent nothing to the client.",
    ),
    (
        "relay.max_body_bytes",
        "Largest request body accepted on /v1 (bytes).",
    ),
    (
        "relay.max_sse_line_bytes",
        "Largest single SSE line relayed from upstream (bytes).",
    ),
    (
        "relay.default_completion_estimate",
        "Completion tokens counted against TPM limits at admission when a request sets no max_tokens (corrected at settle).",
    ),
    (
        "relay.max_output_tokens",
        "Output limit per model, written into a request that sets none unless the balance covers less (model → tokens).",
    ),
    (
        "relay.default_max_output_tokens",
        "Output limit of a model not in relay.max_output_tokens.",
    ),
    (
        "relay.max_completion_tokens_models",
        "Model-name prefixes whose output limit is sent as max_completion_tokens (they refuse max_tokens); others get max_tokens.",
    ),
    (
        "profiler.enabled",
        "Record a CPU profile automatically when CPU use stays high.",
    ),
    (
        "profiler.interval_secs",
        "How often CPU use is sampled (s).",
    ),
    (
        "profiler.threshold_percent",
        "CPU use, in percent of the allowed cores, that triggers a profile.",
    ),
    ("profiler.duration_secs", "Length of one profile (s)."),
    (
        "profiler.cooldown_secs",
        "Rest after an automatic profile before sampling again (s).",
    ),
    ("profiler.keep", "Profiles kept on disk, newest first."),
    (
        "profiler.frequency_hz",
        "Stack samples per second of CPU time.",
    ),
    (
        "log.retention_days",
        "Consume, error and system log rows older than this are deleted (0 = keep all); rollups stay.",
    ),
    (
        "backup.interval_hours",
        "Hours between scheduled backups (0 = none).",
    ),
    (
        "backup.keep",
        "Backups kept in <data>/backups, newest first.",
    ),
    (
        "anomaly.spend_factor",
        "Flag a user or key whose last-hour spend is this many times its usual hourly spend.",
    ),
    (
        "anomaly.min_spend",
        "Last-hour spend (quota units) below which nobody is flagged.",
    ),
    (
        "anomaly.baseline_days",
        "Days of history that make a usual hourly spend.",
    ),
    (
        "anomaly.token_divergence",
        "Flag a model whose upstream prompt tokens differ from the local count by more than this fraction.",
    ),
    (
        "anomaly.error_rate",
        "Flag a channel whose last-hour error rate is above this fraction.",
    ),
    (
        "anomaly.latency_factor",
        "Flag a channel whose last-hour mean latency is this many times the all-channel mean.",
    ),
    (
        "anomaly.min_requests",
        "Requests (or token samples) needed before a channel or model is judged.",
    ),
    (
        "display.currency",
        "How money is shown: USD, CNY, TOKENS (raw units) or CUSTOM.",
    ),
    (
        "display.exchange_rate",
        "CNY per USD, or custom units per USD.",
    ),
    ("display.symbol", "Symbol of the CUSTOM currency."),
    (
        "notify.default_threshold",
        "Quota warning threshold (quota units) for users who set none; 0 = no warnings.",
    ),
    (
        "notify.max_per_window",
        "Most warnings per user or key within one window.",
    ),
    ("notify.window_secs", "Length of the warning window (s)."),
    (
        "notify.ssrf_allow_hosts",
        "Hosts, addresses or CIDR ranges receivers may use although private (self-hosted receivers).",
    ),
    (
        "notify.retries",
        "Further attempts after a transient delivery failure (with backoff).",
    ),
    ("notify.timeout_secs", "Bound on one delivery attempt (s)."),
    (
        "smtp.host",
        "Outgoing mail server; empty turns email notifications off.",
    ),
    (
        "smtp.port",
        "Mail server port (587 STARTTLS, 465 implicit TLS).",
    ),
    (
        "smtp.security",
        "starttls or implicit; certificates are always verified.",
    ),
    ("smtp.username", "SMTP login; empty for none."),
    ("smtp.password", "SMTP password (secret)."),
    (
        "smtp.from",
        "From address, e.g. sluice <noreply@example.com>.",
    ),
    (
        "smtp.plaintext_loopback",
        "Plain SMTP to a mail server on 127.0.0.1/::1 only (a local MTA); other hosts always use TLS.",
    ),
    (
        "ratelimit.key_rpm",
        "Requests per minute for a key that sets no rpm_limit (0 = unlimited).",
    ),
    (
        "ratelimit.key_tpm",
        "Tokens per minute for a key that sets no tpm_limit (0 = unlimited).",
    ),
    (
        "ratelimit.user_rpm",
        "Requests per minute per user whose group is not in group_rpm (0 = unlimited).",
    ),
    (
        "ratelimit.user_tpm",
        "Tokens per minute per user whose group is not in group_tpm (0 = unlimited).",
    ),
    (
        "ratelimit.group_rpm",
        "Requests per minute per user, by group (group → limit; 0 = unlimited).",
    ),
    (
        "ratelimit.group_tpm",
        "Tokens per minute per user, by group (group → limit; 0 = unlimited).",
    ),
    (
        "channel.test_interval_minutes",
        "Minutes between scheduled tests of every channel (0 = no scheduled tests).",
    ),
    (
        "channel.auto_disable",
        "Turn a failing channel off automatically (disable_statuses, or the error rate).",
    ),
    (
        "channel.disable_statuses",
        "Upstream statuses that turn a channel off at once (4xx only; e.g. [401, 403]: the key is refused).",
    ),
    (
        "channel.error_rate_threshold",
        "Turn a channel off when its errors / requests over the window exceed this fraction.",
    ),
    (
        "channel.error_rate_min_requests",
        "Requests a channel must see in the window before its error rate is judged (at least 2).",
    ),
    (
        "channel.error_window_secs",
        "Length of the sliding window the error rate is measured over (s).",
    ),
    (
        "channel.auto_enable",
        "Turn an automatically disabled channel back on after a passing test.",
    ),
    (
        "keys.max_per_user",
        "Most API keys one account may have (0 = no limit).",
    ),
    (
        "cors.allowed_origins",
        "Web pages (origins such as https://chat.example.com) that may call /v1 from a browser; [\"*\"] = any page; [] = none.",
    ),
    (
        "cors.max_age_secs",
        "How long a browser may cache a CORS preflight answer (s).",
    ),
];
