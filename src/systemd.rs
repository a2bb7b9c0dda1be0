//! Talking to systemd (`Type=notify`): readiness, status lines, the watchdog and stopping.
//!
//! Every message is a no-op when the process was not started by systemd (no `NOTIFY_SOCKET`),
//! so `sluice serve` from a shell or a test behaves exactly as before. The environment is read
//! once, by [`Notifier::from_env`] in `main`; the library is handed the result.

use sd_notify::NotifyState;
use std::time::Duration;

/// Added to the stop budget in `EXTEND_TIMEOUT_USEC=`: process exit and scheduling slack.
const STOP_MARGIN: Duration = Duration::from_secs(5);

/// What systemd asked for at start-up: whether to notify at all, and the watchdog period.
#[derive(Clone, Debug, Default)]
pub struct Notifier {
    enabled: bool,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC`/`WATCHDOG_PID` (the latter two only count when
    /// they name this process, as sd_watchdog_enabled(3) requires).
    pub fn from_env() -> Notifier {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        Notifier {
            enabled,
            watchdog: if enabled {
                sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
            } else {
                None
            },
        }
    }

    /// A notifier that never sends anything (tests, and every command but `serve`).
    pub fn disabled() -> Notifier {
        Notifier::default()
    }

    /// How often the watchdog is fed: half the period systemd waits, so one late tick does not
    /// get the service killed. `None` when systemd set no watchdog.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    /// `STATUS=`: one line `systemctl status` shows.
    pub fn status(&self, text: &str) {
        self.send(&[NotifyState::Status(text)]);
    }

    /// `READY=1`: migrations ran and the listener is bound; systemd ends the start job here, so
    /// units ordered after sluice start only once it answers.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// `STOPPING=1`: the drain has begun (systemd shows "deactivating" instead of a failure),
    /// with `EXTEND_TIMEOUT_USEC=` the longest the stop can take plus a margin: systemd then
    /// waits that long even when `TimeoutStopSec=` is shorter (it never shortens it).
    pub fn stopping(&self, within: Duration) {
        let usec = (within + STOP_MARGIN).as_micros();
        self.send(&[
            NotifyState::Stopping,
            NotifyState::Status("draining requests"),
            NotifyState::ExtendTimeoutUsec(u32::try_from(usec).unwrap_or(u32::MAX)),
        ]);
    }

    /// Feeds the watchdog every [`Notifier::watchdog_interval`] while `ping` passes (the server
    /// passes the database ping: a read answers and the writer thread commits a job). A wedged
    /// writer or a stalled runtime stops the feeding, and systemd restarts the service
    /// (`Restart=on-failure`) after `WatchdogSec`.
    pub fn spawn_watchdog<P, F>(&self, ping: P)
    where
        P: Fn() -> F + Send + 'static,
        F: std::future::Future<Output = Result<Duration, String>> + Send,
    {
        let Some(interval) = self.watchdog_interval() else {
            return;
        };
        let notifier = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tick.tick().await;
                match ping().await {
                    Ok(_) if failing => {
                        failing = false;
                        notifier.send(&[
                            NotifyState::Watchdog,
                            NotifyState::Status("serving (the database answers again)"),
                        ]);
                    }
                    Ok(_) => notifier.send(&[NotifyState::Watchdog]),
                    // Logged by the pinger already; here it only withholds the feed.
                    Err(e) => {
                        notifier.status(&format!("database not answering: {e}"));
                        failing = true;
                    }
                }
            }
        });
    }

    fn send(&self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        // A lost notification must not stop the server; systemd's timeouts cover it.
        if let Err(e) = sd_notify::notify(states) {
            log::warn!("cannot notify systemd: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_notifier_has_no_watchdog() {
        assert_eq!(Notifier::disabled().watchdog_interval(), None);
    }

    #[test]
    fn the_watchdog_is_fed_at_half_its_period() {
        let n = Notifier {
            enabled: true,
            watchdog: Some(Duration::from_secs(30)),
        };
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(15)));
    }
}
