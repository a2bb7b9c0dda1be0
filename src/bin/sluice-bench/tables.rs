//! The result tables, shared by the text and the markdown renderings of a report.

use crate::report::{Folds, Report, mode};
use crate::runs::Run;

pub struct Table {
    pub title: String,
    pub head: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("–".to_owned(), |v| format!("{v:.prec$}"))
}

fn head(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

pub fn all(r: &Report) -> Vec<Table> {
    let mut tables = vec![closed(r)];
    if r.scenarios.iter().any(|s| s.nginx.is_some()) {
        tables.push(against_nginx(r));
    }
    if !r.open_loop.is_empty() {
        tables.push(open(r));
    }
    if let Some(t) = tails(r) {
        tables.push(t);
    }
    tables
}

/// Throughput and latency through sluice and directly to the mock.
fn closed(r: &Report) -> Table {
    let rows = r
        .scenarios
        .iter()
        .map(|s| {
            let (sl, di) = (s.sluice.as_ref(), s.direct.as_ref());
            vec![
                s.mode().to_owned(),
                s.connections.to_string(),
                opt(sl.map(|x| x.stats.rps), 0),
                opt(sl.map(|x| x.stats.p50_ms), 3),
                opt(sl.map(|x| x.stats.p99_ms), 3),
                opt(di.map(|x| x.stats.rps), 0),
                opt(di.map(|x| x.stats.p50_ms), 3),
                opt(di.map(|x| x.stats.p99_ms), 3),
                opt(s.added_p50_ms, 3),
                opt(s.added_p99_ms, 3),
                format!(
                    "{}/{}",
                    sl.map_or("–".into(), |x| x.stats.errors.to_string()),
                    di.map_or("–".into(), |x| x.stats.errors.to_string())
                ),
                opt(sl.and_then(|x| x.cpu_us_per_request), 1),
                opt(s.sluice_peak_rss_mib, 1),
                opt(sl.and_then(|x| x.load_cpu_percent), 0),
            ]
        })
        .collect();
    Table {
        title: "Closed loop (each connection sends its next call when the last one ends):".into(),
        head: head(&[
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
        ]),
        rows,
    }
}

/// sluice beside nginx as a bare proxy, on the same core and the same mock.
fn against_nginx(r: &Report) -> Table {
    let written = |run: Option<&Run>| opt(run.and_then(|x| x.written_per_request), 0);
    let rows = r
        .scenarios
        .iter()
        .map(|s| {
            let (sl, ng) = (s.sluice.as_ref(), s.nginx.as_ref());
            vec![
                s.mode().to_owned(),
                s.connections.to_string(),
                opt(ng.map(|x| x.stats.rps), 0),
                opt(sl.map(|x| x.stats.rps), 0),
                opt(s.rps_ratio(), 2),
                opt(ng.and_then(|x| x.cpu_us_per_request), 1),
                opt(sl.and_then(|x| x.cpu_us_per_request), 1),
                opt(s.cpu_ratio(), 2),
                written(ng),
                written(sl),
                opt(ng.map(|x| x.stats.p99_ms), 3),
                opt(sl.map(|x| x.stats.p99_ms), 3),
            ]
        })
        .collect();
    Table {
        title: "Against nginx as a bare reverse proxy (one process, same core, same mock):".into(),
        head: head(&[
            "mode",
            "conns",
            "nginx req/s",
            "sluice req/s",
            "× nginx",
            "nginx CPU µs/req",
            "sluice CPU µs/req",
            "× nginx",
            "nginx B written/req",
            "sluice B written/req",
            "nginx p99 ms",
            "sluice p99 ms",
        ]),
        rows,
    }
}

/// Fixed arrival rates: latency from the time each call was due.
fn open(r: &Report) -> Table {
    let mut rows = Vec::new();
    for o in &r.open_loop {
        for (who, run) in [
            ("direct", &o.direct),
            ("nginx", &o.nginx),
            ("sluice", &o.sluice),
        ] {
            let Some(run) = run else { continue };
            let st = &run.stats;
            let rss = if who == "sluice" {
                opt(o.sluice_peak_rss_mib, 1)
            } else {
                "–".to_owned()
            };
            rows.push(vec![
                mode(o.stream).to_owned(),
                format!("{:.0} ({:.0}%)", o.rate, o.share * 100.0),
                who.to_owned(),
                format!("{:.0}", st.rps),
                format!("{:.3}", st.p50_ms),
                format!("{:.3}", st.p99_ms),
                format!("{:.3}", st.p999_ms),
                format!("{:.3}", st.max_ms),
                st.errors.to_string(),
                rss,
            ]);
        }
    }
    Table {
        title: "Open loop (a fixed arrival rate, a share of sluice's closed-loop req/s at 32 \
                connections; latency from the time each call was due; RSS MiB: sluice's VmHWM \
                after its run):"
            .into(),
        head: head(&[
            "mode", "rate/s", "server", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms",
            "errors", "RSS MiB",
        ]),
        rows,
    }
}

/// Folds or WAL turns of a run: how many, and how long they held the writer.
fn holds(f: Option<&Folds>) -> String {
    f.map_or("–".into(), |f| {
        format!(
            "{}: mean {:.2} ms, {} > 1 ms, {} > 5 ms, slowest ≤ {}",
            f.count,
            f.mean_ms,
            f.over_1ms,
            f.over_5ms,
            f.slowest_at_most_ms
                .map_or("–".into(), |v| format!("{v} ms"))
        )
    })
}

/// The long run at one connection and the profile under load.
fn tails(r: &Report) -> Option<Table> {
    let mut rows = Vec::new();
    if let Some(t) = &r.tail {
        let st = &t.sluice.stats;
        rows.push(vec![
            format!("1 connection, non-stream, {:.0} s", t.seconds),
            format!("{:.0}", st.rps),
            format!("{:.3}", st.p50_ms),
            format!("{:.3}", st.p99_ms),
            format!("{:.3}", st.p999_ms),
            format!("{:.3}", st.max_ms),
            "–".into(),
            holds(t.folds.as_ref()),
            holds(t.wal_turns.as_ref()),
        ]);
    }
    if let Some(p) = &r.profile {
        let st = &p.run.stats;
        rows.push(vec![
            format!("32 connections, non-stream, {} s CPU profile", p.seconds),
            format!("{:.0}", st.rps),
            format!("{:.3}", st.p50_ms),
            format!("{:.3}", st.p99_ms),
            format!("{:.3}", st.p999_ms),
            format!("{:.3}", st.max_ms),
            format!(
                "{:.1} → {:.1} → {:.1}",
                p.rss_before_mib, p.rss_max_mib, p.rss_after_mib
            ),
            "–".into(),
            "–".into(),
        ]);
    }
    (!rows.is_empty()).then(|| Table {
        title: "sluice alone (closed loop):".into(),
        head: head(&[
            "run",
            "req/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "RSS MiB before → max → after",
            "journal folds",
            "writer's WAL turns",
        ]),
        rows,
    })
}
