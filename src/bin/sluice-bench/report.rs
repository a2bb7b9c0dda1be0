//! The results: a table on stdout, a markdown block in docs/performance.md, or JSON.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::runs::{ProfileMemory, Run};

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
    /// Fixed arrival rates, latency from the scheduled send time.
    pub open_loop: Vec<OpenScenario>,
    /// A long run at one connection, for the rare stalls.
    pub tail: Option<Tail>,
    /// The gateway's memory around a CPU profile recorded under load.
    pub profile: Option<ProfileMemory>,
    /// Whether every call sluice answered was charged and logged (a gateway started here).
    pub accounting: Option<crate::accounting::Accounting>,
    pub targets: Vec<Check>,
}

#[derive(Serialize)]
pub struct Scenario {
    pub stream: bool,
    /// `POST /v1/messages` converted to an OpenAI upstream (the format axis's row).
    pub anthropic_in: bool,
    pub connections: usize,
    pub direct: Option<Run>,
    /// nginx as a bare reverse proxy: the floor.
    pub nginx: Option<Run>,
    pub sluice: Option<Run>,
    pub added_p50_ms: Option<f64>,
    pub added_p99_ms: Option<f64>,
    /// VmHWM of sluice after this scenario.
    pub sluice_peak_rss_mib: Option<f64>,
}

impl Scenario {
    pub fn mode(&self) -> &'static str {
        if self.anthropic_in {
            "stream, Anthropic in → OpenAI out"
        } else {
            mode(self.stream)
        }
    }

    /// sluice's throughput over nginx's.
    pub fn rps_ratio(&self) -> Option<f64> {
        ratio(
            self.sluice.as_ref()?.stats.rps,
            self.nginx.as_ref()?.stats.rps,
        )
    }

    /// sluice's CPU per request over nginx's.
    pub fn cpu_ratio(&self) -> Option<f64> {
        ratio(
            self.sluice.as_ref()?.cpu_us_per_request?,
            self.nginx.as_ref()?.cpu_us_per_request?,
        )
    }
}

pub fn mode(stream: bool) -> &'static str {
    if stream { "stream" } else { "non-stream" }
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

#[derive(Serialize)]
pub struct OpenScenario {
    pub stream: bool,
    /// Requests per second scheduled.
    pub rate: f64,
    /// The share of sluice's closed-loop throughput the rate was set to.
    pub share: f64,
    pub direct: Option<Run>,
    pub nginx: Option<Run>,
    pub sluice: Option<Run>,
    /// sluice's VmHWM after its run: with the closed-loop rows' (the same measure), says which
    /// scenario set the peak.
    pub sluice_peak_rss_mib: Option<f64>,
}

#[derive(Serialize)]
pub struct Tail {
    pub seconds: f64,
    pub sluice: Run,
    /// The direct p99.9 at one connection (closed loop), subtracted for the added figure.
    pub direct_p999_ms: Option<f64>,
    /// The journal folds made during the run (from `/api/stats`), when the gateway was started
    /// here: each holds the writer, and a call arriving meanwhile waits for it.
    pub folds: Option<Folds>,
    /// The writer's own WAL checkpoints during the run (`db.wal_turn_latency`): each holds the
    /// writer like a fold.
    pub wal_turns: Option<Folds>,
}

/// Journal folds (or the writer's WAL turns) over a run, from the difference of two
/// `/api/stats` histograms (`db.fold_latency`, `db.wal_turn_latency`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Folds {
    pub count: u64,
    pub mean_ms: f64,
    pub over_1ms: u64,
    pub over_5ms: u64,
    /// The upper bound of the highest bucket any fold fell in (ms); None for +Inf or no fold.
    pub slowest_at_most_ms: Option<f64>,
}

impl Folds {
    /// The folds between two `/api/stats` answers.
    pub fn between(before: &serde_json::Value, after: &serde_json::Value) -> Option<Folds> {
        Self::of("fold_latency", before, after)
    }

    /// The writer's WAL turns between two `/api/stats` answers.
    pub fn wal_turns_between(
        before: &serde_json::Value,
        after: &serde_json::Value,
    ) -> Option<Folds> {
        Self::of("wal_turn_latency", before, after)
    }

    /// The observations of `db.<histogram>` between two `/api/stats` answers.
    fn of(histogram: &str, before: &serde_json::Value, after: &serde_json::Value) -> Option<Folds> {
        /// (count, sum in ms, cumulative count per upper bound).
        type Hist = (u64, f64, Vec<(String, u64)>);
        let h = |v: &serde_json::Value| -> Option<Hist> {
            let f = &v["db"][histogram];
            let buckets = f["buckets"]
                .as_array()?
                .iter()
                .filter_map(|b| Some((b[0].as_str()?.to_owned(), b[1].as_u64()?)))
                .collect();
            Some((f["count"].as_u64()?, f["sum_ms"].as_f64()?, buckets))
        };
        let (c0, s0, b0) = h(before)?;
        let (c1, s1, b1) = h(after)?;
        let count = c1.saturating_sub(c0);
        // Cumulative counts per bound, over the run.
        let within: Vec<(String, u64)> = b1
            .iter()
            .zip(b0.iter())
            .map(|((le, a), (_, b))| (le.clone(), a.saturating_sub(*b)))
            .collect();
        let at_most = |ms: &str| within.iter().find(|(le, _)| le == ms).map(|(_, c)| *c);
        let slowest_at_most_ms = within
            .iter()
            .find(|(_, c)| *c == count)
            .and_then(|(le, _)| le.parse::<f64>().ok())
            .filter(|v| count > 0 && v.is_finite());
        Some(Folds {
            count,
            mean_ms: if count == 0 {
                0.0
            } else {
                (s1 - s0) / count as f64
            },
            over_1ms: count.saturating_sub(at_most("1")?),
            over_5ms: count.saturating_sub(at_most("5")?),
            slowest_at_most_ms,
        })
    }
}

impl Tail {
    pub fn added_p999_ms(&self) -> Option<f64> {
        Some(self.sluice.stats.p999_ms - self.direct_p999_ms?)
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
            .find(|s| s.stream == stream && s.connections == connections && !s.anthropic_in)
    }

    /// Compare with the targets in docs/performance.md.
    pub fn check_targets(&mut self) {
        let mut checks = Vec::new();
        let rps = |stream, conns| {
            self.find(stream, conns)
                .and_then(|s| s.sluice.as_ref())
                .map(|s| (s.stats.rps, s.stats.errors))
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
        for (stream, goal) in [(false, 0.8), (true, 1.0)] {
            let got = self.find(stream, 32).and_then(Scenario::rps_ratio);
            checks.push(Check {
                target: format!("{} req/s at 32 connections, to nginx's", mode(stream)),
                goal: format!("≥ {goal:.1}×"),
                measured: got.map_or("–".into(), |r| format!("{r:.2}×")),
                pass: got.map(|r| r >= goal),
            });
        }
        for stream in [false, true] {
            for (conns, goal) in [(1, 8192.0), (32, 2048.0)] {
                let got = self
                    .find(stream, conns)
                    .and_then(|s| s.sluice.as_ref()?.written_per_request);
                checks.push(Check {
                    target: format!(
                        "bytes written per call, {}, {conns} connection{}",
                        mode(stream),
                        if conns == 1 { "" } else { "s" }
                    ),
                    goal: format!("≤ {} KiB", goal / 1024.0),
                    measured: got.map_or("–".into(), |b| format!("{:.1} KiB", b / 1024.0)),
                    pass: got.map(|b| b <= goal),
                });
            }
        }
        if let Some(tail) = &self.tail {
            let secs = tail.seconds;
            let got = tail.added_p999_ms();
            checks.push(Check {
                target: format!("added latency p99.9, non-stream, 1 connection, {secs:.0} s"),
                goal: "≤ 1 ms".into(),
                measured: got.map_or("–".into(), |v| format!("{v:.3} ms")),
                pass: got.map(|v| v <= 1.0),
            });
            let max = tail.sluice.stats.max_ms;
            checks.push(Check {
                target: format!("slowest call, non-stream, 1 connection, {secs:.0} s"),
                goal: "≤ 5 ms".into(),
                measured: format!("{max:.3} ms"),
                pass: Some(max <= 5.0),
            });
        }
        if let Some(p) = &self.profile {
            let extra = p.rss_max_mib - p.rss_before_mib;
            checks.push(Check {
                target: format!("memory a {} s CPU profile adds while recording", p.seconds),
                goal: "≤ 16 MiB".into(),
                measured: format!(
                    "{extra:.1} MiB ({:.1} → {:.1} MiB{})",
                    p.rss_before_mib,
                    p.rss_max_mib,
                    if p.recorded {
                        ""
                    } else {
                        "; the profile failed"
                    }
                ),
                pass: Some(p.recorded && extra <= 16.0),
            });
            let kept = p.rss_after_mib - p.rss_before_mib;
            checks.push(Check {
                target: "memory a CPU profile keeps afterwards".into(),
                goal: "≤ 4 MiB".into(),
                measured: format!("{kept:.1} MiB ({:.1} MiB after)", p.rss_after_mib),
                pass: Some(p.recorded && kept <= 4.0),
            });
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
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.summary_line());
        for table in crate::tables::all(self) {
            let mut widths: Vec<usize> = table.head.iter().map(|h| h.chars().count()).collect();
            for row in &table.rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let line = |cells: &[String]| {
                cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:>w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
            };
            let _ = writeln!(out, "\n{}", table.title);
            let _ = writeln!(out, "{}", line(&table.head));
            for row in &table.rows {
                let _ = writeln!(out, "{}", line(row));
            }
        }
        let _ = writeln!(
            out,
            "\nstartup (spawn → first 200 from /api/status): {}   peak RSS: {}",
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
        for (what, run) in self.runs() {
            if let Some(e) = &run.stats.first_error {
                let _ = writeln!(out, "first error, {what}: {e}");
            }
        }
        out
    }

    /// Every run with a name for messages.
    fn runs(&self) -> Vec<(String, &Run)> {
        let mut runs = Vec::new();
        for s in &self.scenarios {
            for (who, run) in [
                ("sluice", &s.sluice),
                ("nginx", &s.nginx),
                ("direct", &s.direct),
            ] {
                if let Some(run) = run {
                    runs.push((format!("{} {} conns, {who}", s.mode(), s.connections), run));
                }
            }
        }
        for o in &self.open_loop {
            for (who, run) in [
                ("sluice", &o.sluice),
                ("nginx", &o.nginx),
                ("direct", &o.direct),
            ] {
                if let Some(run) = run {
                    runs.push((
                        format!("open loop {} at {:.0}/s, {who}", mode(o.stream), o.rate),
                        run,
                    ));
                }
            }
        }
        if let Some(t) = &self.tail {
            runs.push(("tail run, sluice".into(), &t.sluice));
        }
        if let Some(p) = &self.profile {
            runs.push(("profile run, sluice".into(), &p.run));
        }
        runs
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Last run: {}.", self.summary_line());
        for table in crate::tables::all(self) {
            let _ = writeln!(out, "\n{}\n", table.title);
            let _ = writeln!(out, "| {} |", table.head.join(" | "));
            let _ = writeln!(out, "|{}", "---|".repeat(table.head.len()));
            for row in &table.rows {
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
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
    fn folds_over_a_run_are_the_difference_of_two_histograms() {
        let stats = |count: u64, sum_ms: f64, cumulative: [u64; 4]| {
            serde_json::json!({"db": {"fold_latency": {
                "count": count, "sum_ms": sum_ms,
                "buckets": [["0.5", cumulative[0]], ["1", cumulative[1]], ["5", cumulative[2]],
                            ["+Inf", cumulative[3]]],
            }}})
        };
        let f = Folds::between(
            &stats(2, 1.0, [2, 2, 2, 2]),
            &stats(12, 21.0, [4, 6, 11, 12]),
        )
        .unwrap();
        assert_eq!((f.count, f.over_1ms, f.over_5ms), (10, 6, 1));
        assert!((f.mean_ms - 2.0).abs() < 1e-9);
        assert_eq!(
            f.slowest_at_most_ms, None,
            "one fold was past the last bound"
        );
        let f = Folds::between(&stats(0, 0.0, [0; 4]), &stats(3, 1.0, [1, 3, 3, 3])).unwrap();
        assert_eq!(f.slowest_at_most_ms, Some(1.0));
    }

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
            open_loop: Vec::new(),
            tail: None,
            profile: None,
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
