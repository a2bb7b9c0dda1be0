//! Start-up configuration: one typed struct, filled from defaults → TOML file → `SLUICE_*`
//! environment → command-line flags, then checked by [`Config::validate`].
//!
//! Only what is needed before the database opens lives here; run-time settings (prices, limits)
//! are options in the database. The library never reads the environment itself: `main` passes it in.

use crate::secret::Secret;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Directory for the database and everything else sluice writes.
    pub data_dir: PathBuf,
    /// Database file; defaults to `<data_dir>/sluice.db`.
    pub database: Option<PathBuf>,
    /// Emit DEBUG lines.
    pub debug: bool,
    /// Peers whose `X-Forwarded-For` header is believed (reverse proxies).
    pub trusted_proxies: Vec<IpAddr>,
    /// Password for the root account created on first start; generated when empty.
    pub root_password: Secret,
    /// Longest wait for in-flight requests at shutdown, in seconds.
    pub shutdown_grace_secs: u64,
    /// Mark the session cookie `Secure` (set when sluice is served over TLS by a proxy).
    pub secure_cookies: bool,
    /// Let `/metrics` be scraped without a token from loopback (not through a proxy).
    pub metrics_from_loopback: bool,
    /// Seconds between database health pings.
    pub db_ping_interval_secs: u64,
    /// A new connection must send a whole request head within this many seconds.
    pub header_read_timeout_secs: u64,
    /// A keep-alive connection with no request in progress is closed after this many seconds.
    pub keep_alive_timeout_secs: u64,
    /// Client connections open at once (lowered at start to what the open-file limit allows).
    pub max_connections: usize,
    /// Client connections from one address (trusted proxies exempt).
    pub max_connections_per_address: usize,
    pub log: LogConfig,
}

/// Log files (stdout/stderr always get the lines too).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Directory of the log files; defaults to `<data_dir>/logs`.
    pub dir: Option<PathBuf>,
    /// Write log files at all.
    pub files: bool,
    /// A new file after this many lines…
    pub max_lines: u64,
    /// …or this many bytes, whichever comes first.
    pub max_bytes: u64,
    /// How many `sluice-*.log` files to keep (the current one included).
    pub keep: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            dir: None,
            files: true,
            max_lines: 1_000_000,
            max_bytes: 100 * 1024 * 1024,
            keep: 10,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            data_dir: PathBuf::from("./data"),
            database: None,
            debug: false,
            trusted_proxies: Vec::new(),
            root_password: Secret::default(),
            shutdown_grace_secs: 30,
            secure_cookies: false,
            metrics_from_loopback: false,
            db_ping_interval_secs: 10,
            header_read_timeout_secs: 10,
            keep_alive_timeout_secs: 75,
            max_connections: 4096,
            max_connections_per_address: 256,
            log: LogConfig::default(),
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database: Option<PathBuf>,
    pub debug: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}={value:?} is not valid: {hint}")]
    Env {
        name: String,
        value: String,
        hint: String,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Builds the configuration from all layers and validates it.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut cfg = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| {
                    let mut message = e.to_string();
                    if let Some(section) = ["[relay]", "[profiler]"]
                        .into_iter()
                        .find(|s| text.lines().any(|l| l.trim() == *s))
                    {
                        message = format!(
                            "{section} settings are run-time options now: remove the section and set them with PUT /api/option (e.g. relay.retries, profiler.enabled); {message}"
                        );
                    }
                    ConfigError::Parse {
                        path: path.to_path_buf(),
                        message,
                    }
                })?
            }
            None => Config::default(),
        };
        for (name, value) in env {
            cfg.apply_env(&name, &value)?;
        }
        if let Some(l) = flags.listen {
            cfg.listen = l;
        }
        if let Some(d) = &flags.data_dir {
            cfg.data_dir = d.clone();
        }
        if let Some(d) = &flags.database {
            cfg.database = Some(d.clone());
        }
        cfg.debug |= flags.debug;
        cfg.validate()?;
        Ok(cfg)
    }

    fn apply_env(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(
            name: &str,
            value: &str,
            hint: &str,
        ) -> Result<T, ConfigError> {
            value.trim().parse().map_err(|_| ConfigError::Env {
                name: name.into(),
                value: value.into(),
                hint: hint.into(),
            })
        }
        let bool_hint = "use true or false";
        let num_hint = "use a whole number";
        match name {
            "SLUICE_LISTEN" => {
                self.listen = parse(name, value, "use IP:PORT, e.g. 127.0.0.1:3000")?
            }
            "SLUICE_DATA_DIR" => self.data_dir = PathBuf::from(value),
            "SLUICE_DATABASE" => self.database = Some(PathBuf::from(value)),
            "SLUICE_DEBUG" => self.debug = parse(name, value, bool_hint)?,
            "SLUICE_SECURE_COOKIES" => self.secure_cookies = parse(name, value, bool_hint)?,
            "SLUICE_METRICS_FROM_LOOPBACK" => {
                self.metrics_from_loopback = parse(name, value, bool_hint)?
            }
            "SLUICE_DB_PING_INTERVAL_SECS" => {
                self.db_ping_interval_secs = parse(name, value, num_hint)?
            }
            "SLUICE_HEADER_READ_TIMEOUT_SECS" => {
                self.header_read_timeout_secs = parse(name, value, num_hint)?
            }
            "SLUICE_KEEP_ALIVE_TIMEOUT_SECS" => {
                self.keep_alive_timeout_secs = parse(name, value, num_hint)?
            }
            "SLUICE_MAX_CONNECTIONS" => self.max_connections = parse(name, value, num_hint)?,
            "SLUICE_MAX_CONNECTIONS_PER_ADDRESS" => {
                self.max_connections_per_address = parse(name, value, num_hint)?
            }
            "SLUICE_ROOT_PASSWORD" => self.root_password = Secret::new(value),
            "SLUICE_SHUTDOWN_GRACE_SECS" => {
                self.shutdown_grace_secs = parse(name, value, num_hint)?
            }
            "SLUICE_TRUSTED_PROXIES" => {
                self.trusted_proxies = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| parse(name, s, "use a comma-separated list of IP addresses"))
                    .collect::<Result<_, _>>()?
            }
            "SLUICE_LOG_DIR" => self.log.dir = Some(PathBuf::from(value)),
            "SLUICE_LOG_FILES" => self.log.files = parse(name, value, bool_hint)?,
            "SLUICE_LOG_KEEP" => self.log.keep = parse(name, value, num_hint)?,
            _ => {}
        }
        Ok(())
    }

    /// Checks values that parse but cannot work; each message says how to fix it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid(
                "data_dir is empty: set data_dir in the config file or SLUICE_DATA_DIR to a writable directory".into(),
            ));
        }
        if !(1..=3600).contains(&self.db_ping_interval_secs) {
            return Err(ConfigError::Invalid(
                "db_ping_interval_secs must be 1 to 3600 (default 10)".into(),
            ));
        }
        for (key, v, default) in [
            (
                "header_read_timeout_secs",
                self.header_read_timeout_secs,
                10,
            ),
            ("keep_alive_timeout_secs", self.keep_alive_timeout_secs, 75),
        ] {
            if !(1..=3600).contains(&v) {
                return Err(ConfigError::Invalid(format!(
                    "{key} must be 1 to 3600 (default {default})"
                )));
            }
        }
        if self.max_connections < 1 || self.max_connections_per_address < 1 {
            return Err(ConfigError::Invalid(
                "max_connections and max_connections_per_address must be at least 1 (defaults 4096 and 256)".into(),
            ));
        }
        if self.max_connections_per_address > self.max_connections {
            return Err(ConfigError::Invalid(format!(
                "max_connections_per_address = {} is above max_connections = {}: lower it or raise max_connections",
                self.max_connections_per_address, self.max_connections
            )));
        }
        let l = &self.log;
        if l.dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            return Err(ConfigError::Invalid(
                "log.dir is empty: remove it (logs then go to <data_dir>/logs), set it (or SLUICE_LOG_DIR) to a writable directory, or set log.files = false".into(),
            ));
        }
        if l.keep < 1 {
            return Err(ConfigError::Invalid(
                "log.keep must be at least 1 (default 10): set log.keep or SLUICE_LOG_KEEP; to write no log files set log.files = false (SLUICE_LOG_FILES=false)".into(),
            ));
        }
        if l.max_lines < 1000 {
            return Err(ConfigError::Invalid(format!(
                "log.max_lines = {} is too small: use at least 1000 (default 1000000)",
                l.max_lines
            )));
        }
        if l.max_bytes < 1024 * 1024 {
            return Err(ConfigError::Invalid(format!(
                "log.max_bytes = {} is too small: use at least 1048576 (1 MiB; default 104857600)",
                l.max_bytes
            )));
        }
        if !self.root_password.is_empty() && self.root_password.expose().len() < 8 {
            return Err(ConfigError::Invalid(
                "the root password must be at least 8 characters: change SLUICE_ROOT_PASSWORD"
                    .into(),
            ));
        }
        Ok(())
    }

    pub fn database_path(&self) -> PathBuf {
        self.database
            .clone()
            .unwrap_or_else(|| self.data_dir.join("sluice.db"))
    }

    /// Where CPU profiles are written.
    pub fn profile_dir(&self) -> PathBuf {
        self.data_dir.join("pprof")
    }

    /// Where log files go; `None` when they are turned off.
    pub fn log_dir(&self) -> Option<PathBuf> {
        if !self.log.files {
            return None;
        }
        Some(
            self.log
                .dir
                .clone()
                .unwrap_or_else(|| self.data_dir.join("logs")),
        )
    }

    /// The effective settings on one line, for the `[SYS]` start-up line. Secrets are never
    /// shown: the root password only as whether one is configured.
    pub fn summary(&self) -> String {
        let proxies: Vec<String> = self.trusted_proxies.iter().map(|p| p.to_string()).collect();
        let log = match self.log_dir() {
            Some(d) => format!(
                "log_dir={:?} log_max_lines={} log_max_bytes={} log_keep={}",
                d.display().to_string(),
                self.log.max_lines,
                self.log.max_bytes,
                self.log.keep
            ),
            None => "log_files=off".to_string(),
        };
        format!(
            "listen={} data_dir={:?} database={:?} debug={} trusted_proxies=[{}] root_password={} shutdown_grace_secs={} secure_cookies={} metrics_from_loopback={} db_ping_interval_secs={} header_read_timeout_secs={} keep_alive_timeout_secs={} max_connections={} max_connections_per_address={} {log}",
            self.listen,
            self.data_dir.display().to_string(),
            self.database_path().display().to_string(),
            self.debug,
            proxies.join(","),
            if self.root_password.is_empty() {
                "unset"
            } else {
                "set"
            },
            self.shutdown_grace_secs,
            self.secure_cookies,
            self.metrics_from_loopback,
            self.db_ping_interval_secs,
            self.header_read_timeout_secs,
            self.keep_alive_timeout_secs,
            self.max_connections,
            self.max_connections_per_address,
        )
    }
}

#[cfg(test)]
mod tests;
