//! The results: a table on stdout, a markdown block in docs/performance.md, or JSON.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::load::Stats;

pub const BEGIN: &str = "<!-- bench:begin -->";
pub const END: &str = "<!-- bench:end -->";
/// Background CPU use (in % of one CPU) above which the results are flagged as noisy.
pub const BUSY_PERCENT: f64 = 10.0;

#[derive(Serialize)]
pub struct Report {
    pub date: String,
    pub commit: Option<String>,
    pub machine: String,
    pub seconds_per_scenario: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub pinned: bool,
    /// CPU the machine used just before the run, in % of one CPU (other processes disturb it).
    pub background_cpu_percent: Option<f64>,
    /// Spawn to the first `GET /api/status` answered 200.
    pub startup_ms: Option<f64>,
    /// VmHWM of sluice at the end.
    pub peak_rss_mib: Option<f64>,
    pub scenarios: Vec<Scenario>,
    /// Whether every call sluice answered was charged and logged (a gateway started here).
    pub accounting: Option<crate::accounting::Accounting>,
    pub targets: Vec<Check>,
}

#[derive(Serialize)]
pub struct Scenario {
    pub stream: bool,
    pub connections: usize,
    pub direct: Option<Stats>,
    pub sluice: Option<Stats>,
    pub added_p50_ms: Option<f64>,
    pub added_p99_ms: Option<f64>,
    pub sluice_cpu_us_per_request: Option<f64>,
    /// CPU used by the load side (this process and the mock) during the through-sluice run, in
    /// % of one CPU: near 100 means the load side, not sluice, was the limit.
    pub load_cpu_percent: Option<f64>,
    /// VmHWM of sluice after this scenario.
    pub sluice_peak_rss_mib: Option<f64>,
}

impl Scenario {
    pub fn mode(&self) -> &'static str {
        if self.stream { "stream" } else { "non-stream" }
    }
}

#[derive(Serialize)]
pub struct Check {
    pub target: String,
    pub goal: String,
    pub measured: String,
    /// None when it was not measured.
    pub pass: Option<bool>,
}

impl Report {
    pub fn find(&self, stream: bool, connections: usize) -> Option<&Scenario> {
        self.scenarios
            .iter()
            .find(|s| s.stream == stream && s.connections == connections)
    }

    /// Compare with the targets in docs/performance.md.
    pub fn check_targets(&mut self) {
        let mut checks = Vec::new();
        let rps = |stream, conns| {
            self.find(stream, conns)
                .and_then(|s| s.sluice.as_ref())
                .map(|s| (s.rps, s.errors))
        };
        for (stream, goal) in [(false, 10_000.0), (true, 5_000.0)] {
            let what = if stream { "streamed" } else { "non-stream" };
            let got = rps(stream, 32);
            checks.push(Check {
                target: format!("{what} req/s at 32 connections"),
                goal: format!("≥ {goal:.0}"),
                measured: got.map_or("–".into(), |(r, e)| format!("{r:.0} ({e} errors)")),
                pass: got.map(|(r, e)| r >= goal && e == 0),
            });
        }
        for stream in [false, true] {
            let s = self.find(stream, 1);
            let mode = if stream { "stream" } else { "non-stream" };
            for (name, goal, got) in [
                ("p50", 0.3, s.and_then(|s| s.added_p50_ms)),
                ("p99", 1.0, s.and_then(|s| s.added_p99_ms)),
            ] {
                checks.push(Check {
                    target: format!("added latency {name}, {mode}, 1 connection"),
                    goal: format!("≤ {goal} ms"),
                    measured: got.map_or("–".into(), |v| format!("{v:.3} ms")),
                    pass: got.map(|v| v <= goal),
                });
            }
        }
        checks.push(Check {
            target: "sluice peak RSS (VmHWM)".into(),
            goal: "≤ 64 MiB".into(),
            measured: self
                .peak_rss_mib
                .map_or("–".into(), |v| format!("{v:.1} MiB")),
            pass: self.peak_rss_mib.map(|v| v <= 64.0),
        });
        checks.push(Check {
            target: "first request served after start".into(),
            goal: "≤ 200 ms".into(),
            measured: self.startup_ms.map_or("–".into(), |v| format!("{v:.1} ms")),
            pass: self.startup_ms.map(|v| v <= 200.0),
        });
        checks.push(Check {
            target: "every call answered through sluice charged and logged".into(),
            goal: "a consume row per answer, rows' quota = used_quota, reconcile clean".into(),
            measured: self
                .accounting
                .as_ref()
                .map_or("–".into(), crate::accounting::Accounting::measured),
            pass: self
                .accounting
                .as_ref()
                .map(crate::accounting::Accounting::pass),
        });
        self.targets = checks;
    }

    /// The targets measured and missed.
    pub fn missed(&self) -> Vec<&Check> {
        self.targets
            .iter()
            .filter(|c| c.pass == Some(false))
            .collect()
    }

    /// The rows of the results table (shared by the text and markdown renderings).
    fn rows(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let head = vec![
            "mode",
            "conns",
            "sluice req/s",
            "p50 ms",
            "p99 ms",
            "direct req/s",
            "p50 ms",
            "p99 ms",
            "added p50",
            "added p99",
            "errors s/d",
            "CPU µs/req",
            "RSS MiB",
            "load CPU %",
        ];
        let opt =
            |v: Option<f64>, prec: usize| v.map_or("–".to_owned(), |v| format!("{v:.prec$}"));
        let rows = self
            .scenarios
            .iter()
            .map(|s| {
                let (sl, di) = (s.sluice.as_ref(), s.direct.as_ref());
                vec![
                    s.mode().to_owned(),
                    s.connections.to_string(),
                    opt(sl.map(|x| x.rps), 0),
                    opt(sl.map(|x| x.p50_ms), 3),
                    opt(sl.map(|x| x.p99_ms), 3),
                    opt(di.map(|x| x.rps), 0),
                    opt(di.map(|x| x.p50_ms), 3),
                    opt(di.map(|x| x.p99_ms), 3),
                    opt(s.added_p50_ms, 3),
                    opt(s.added_p99_ms, 3),
                    format!(
                        "{}/{}",
                        sl.map_or("–".into(), |x| x.errors.to_string()),
                        di.map_or("–".into(), |x| x.errors.to_string())
                    ),
                    opt(s.sluice_cpu_us_per_request, 1),
                    opt(s.sluice_peak_rss_mib, 1),
                    opt(s.load_cpu_percent, 0),
                ]
            })
            .collect();
        (head, rows)
    }

    fn summary_line(&self) -> String {
        let mut note = self
            .note
            .as_deref()
            .map(|n| format!(" · {n}"))
            .unwrap_or_default();
        if let Some(busy) = self.background_cpu_percent.filter(|&b| b > BUSY_PERCENT) {
            let _ = write!(
                note,
                " · ⚠ other processes used {busy:.0}% of a CPU before the run: noisy"
            );
        }
        format!(
            "{} · commit {} · {} · {} s per scenario · {}{note}",
            self.date,
            self.commit.as_deref().unwrap_or("unknown"),
            self.machine,
            self.seconds_per_scenario,
            if self.pinned {
                "sluice on CPU 0, mock and load generator on CPU 1"
            } else {
                "not pinned to CPUs"
            }
        )
    }

    pub fn text(&self) -> String {
        let (head, rows) = self.rows();
        let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.summary_line());
        let line = |cells: Vec<String>| {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:>w$}"))
                .collect::<Vec<_>>()
                .join("  ")
        };
        let _ = writeln!(
            out,
            "{}",
            line(head.iter().map(|h| (*h).to_owned()).collect())
        );
        for row in rows {
            let _ = writeln!(out, "{}", line(row));
        }
        let _ = writeln!(
            out,
            "startup (spawn → first 200 from /api/status): {}   peak RSS: {}",
            self.startup_ms.map_or("–".into(), |v| format!("{v:.1} ms")),
            self.peak_rss_mib
                .map_or("–".into(), |v| format!("{v:.1} MiB"))
        );
        for c in &self.targets {
            let verdict = match c.pass {
                Some(true) => "PASS",
                Some(false) => "FAIL",
                None => "n/a ",
            };
            let _ = writeln!(
                out,
                "[{verdict}] {}: {} (goal {})",
                c.target, c.measured, c.goal
            );
        }
        for s in &self.scenarios {
            for (who, stats) in [("sluice", &s.sluice), ("direct", &s.direct)] {
                if let Some(e) = stats.as_ref().and_then(|x| x.first_error.as_ref()) {
                    let _ = writeln!(
                        out,
                        "first error, {} {} conns, {who}: {e}",
                        s.mode(),
                        s.connections
                    );
                }
            }
        }
        out
    }

    pub fn markdown(&self) -> String {
        let (head, rows) = self.rows();
        let mut out = String::new();
        let _ = writeln!(out, "Last run: {}.\n", self.summary_line());
        let _ = writeln!(out, "| {} |", head.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
        for row in rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        let _ = writeln!(out, "\n| target | goal | measured | |\n|---|---|---|---|");
        for c in &self.targets {
            let verdict = match c.pass {
                Some(true) => "✅",
                Some(false) => "❌",
                None => "not measured",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {verdict} |",
                c.target, c.goal, c.measured
            );
        }
        out
    }
}

/// Replace the text between the markers of `path` with `block` (appending the markers when the
/// file has none).
pub fn write_block(path: &Path, block: &str) -> anyhow::Result<()> {
    let doc = match std::fs::read_to_string(path) {
        Ok(doc) => doc,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::from("# Performance\n"),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let updated = replace_block(&doc, block);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, updated).with_context(|| format!("cannot write {}", path.display()))
}

fn replace_block(doc: &str, block: &str) -> String {
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{BEGIN}\n{block}{}", &doc[..b], &doc[e..]),
        _ => format!(
            "{}\n{BEGIN}\n{block}{END}\n",
            doc.trim_end_matches('\n').to_owned() + "\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missed_target_is_listed_and_an_unmeasured_one_is_not() {
        let mut r = Report {
            date: String::new(),
            commit: None,
            machine: String::new(),
            seconds_per_scenario: 1.0,
            note: None,
            pinned: false,
            background_cpu_percent: None,
            startup_ms: Some(250.0),
            peak_rss_mib: Some(40.0),
            scenarios: Vec::new(),
            accounting: None,
            targets: Vec::new(),
        };
        r.check_targets();
        let missed: Vec<&str> = r.missed().iter().map(|c| c.target.as_str()).collect();
        assert_eq!(missed, ["first request served after start"]);
        assert!(r.text().contains("[FAIL] first request served after start"));
        assert!(
            r.text()
                .contains("[n/a ] every call answered through sluice")
        );
    }

    #[test]
    fn replaces_only_between_the_markers() {
        let doc = format!("intro\n{BEGIN}\nold\n{END}\noutro\n");
        assert_eq!(
            replace_block(&doc, "new\n"),
            format!("intro\n{BEGIN}\nnew\n{END}\noutro\n")
        );
        assert_eq!(
            replace_block("intro\n", "new\n"),
            format!("intro\n\n{BEGIN}\nnew\n{END}\n")
        );
    }
}
