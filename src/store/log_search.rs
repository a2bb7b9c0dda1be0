//! Searching the logs: one page of rows under a filter, sorted by an allow-listed column, with
//! a keyset cursor so pages never repeat or skip a row while new rows arrive.

use super::StoreError;
use super::log_query::{LogFilter, logs_where};
use rusqlite::types::Value;
use rusqlite::{Connection, Row};
use serde::Serialize;

/// Sort columns a caller may choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    CreatedAt,
    Quota,
    Latency,
    PromptTokens,
    CompletionTokens,
}

impl SortKey {
    pub const NAMES: &[&str] = &[
        "created_at",
        "quota",
        "latency_ms",
        "prompt_tokens",
        "completion_tokens",
    ];

    pub fn parse(s: &str) -> Option<SortKey> {
        Some(match s {
            "created_at" => SortKey::CreatedAt,
            "quota" => SortKey::Quota,
            "latency_ms" => SortKey::Latency,
            "prompt_tokens" => SortKey::PromptTokens,
            "completion_tokens" => SortKey::CompletionTokens,
            _ => return None,
        })
    }

    /// The value a row is sorted by (as [`Self::column`] reads it).
    fn value_of(self, r: &LogRow) -> i64 {
        match self {
            SortKey::CreatedAt => r.created_at,
            SortKey::Quota => r.quota,
            SortKey::Latency => r.latency_ms.unwrap_or(-1),
            SortKey::PromptTokens => r.prompt_tokens,
            SortKey::CompletionTokens => r.completion_tokens,
        }
    }

    /// The SQL expression sorted on; never NULL, so the cursor comparison is total.
    fn column(self) -> &'static str {
        match self {
            SortKey::CreatedAt => "created_at",
            SortKey::Quota => "quota",
            SortKey::Latency => "COALESCE(latency_ms, -1)",
            SortKey::PromptTokens => "prompt_tokens",
            SortKey::CompletionTokens => "completion_tokens",
        }
    }
}

/// Where the previous page ended: the sort value and id of its last row. Rows are ordered by
/// (sort value, id), which is unique, so pages never repeat or skip a row while new rows
/// arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub value: i64,
    pub id: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.value, self.id)
    }

    /// `<value>.<id>`, each 1–18 digits (the value may be negative), as `encode` writes them.
    pub fn decode(s: &str) -> Option<Cursor> {
        let (v, id) = s.split_once('.')?;
        let digits = |d: &str| (1..=18).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit());
        if !digits(v.strip_prefix('-').unwrap_or(v)) || !digits(id) {
            return None;
        }
        Some(Cursor {
            value: v.parse().ok()?,
            id: id.parse().ok()?,
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub sort: SortKey,
    pub descending: bool,
    pub limit: usize,
    pub after: Option<Cursor>,
    /// Rows skipped (page-number paging, for scripts that page by number).
    pub offset: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct LogRow {
    pub id: i64,
    pub created_at: i64,
    #[serde(rename = "type")]
    pub log_type: i64,
    pub request_id: String,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub key_id: Option<i64>,
    pub key_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<i64>,
    pub group: Option<String>,
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_model: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub quota: i64,
    pub latency_ms: Option<i64>,
    pub ttfb_ms: Option<i64>,
    pub is_stream: bool,
    pub status: Option<i64>,
    pub usage_source: Option<String>,
    pub content: Option<String>,
    /// Parts of the prompt read from / written to the prompt cache, and of the completion
    /// spent reasoning (0 when the upstream reports none).
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cache_write_1h_tokens: i64,
    pub reasoning_tokens: i64,
}

const ROW_COLUMNS: &str = "id, created_at, type, request_id, user_id, username, key_id, key_name, channel_id, \
    user_group, model, upstream_model, prompt_tokens, completion_tokens, quota, latency_ms, ttfb_ms, is_stream, \
    status, usage_source, content, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, \
    reasoning_tokens";

fn log_row(r: &Row) -> rusqlite::Result<LogRow> {
    Ok(LogRow {
        id: r.get(0)?,
        created_at: r.get(1)?,
        log_type: r.get(2)?,
        request_id: r.get(3)?,
        user_id: r.get(4)?,
        username: r.get(5)?,
        key_id: r.get(6)?,
        key_name: r.get(7)?,
        channel_id: r.get(8)?,
        group: r.get(9)?,
        model: r.get(10)?,
        upstream_model: r.get(11)?,
        prompt_tokens: r.get(12)?,
        completion_tokens: r.get(13)?,
        quota: r.get(14)?,
        latency_ms: r.get(15)?,
        ttfb_ms: r.get(16)?,
        is_stream: r.get(17)?,
        status: r.get(18)?,
        usage_source: r.get(19)?,
        content: r.get(20)?,
        cache_read_tokens: r.get(21)?,
        cache_write_tokens: r.get(22)?,
        cache_write_1h_tokens: r.get(23)?,
        reasoning_tokens: r.get(24)?,
    })
}

/// The SQL of one page and its bound values.
fn page_query(f: &LogFilter, page: &PageRequest) -> (String, Vec<Value>) {
    let mut w = logs_where(f, f.start, f.end);
    let col = page.sort.column();
    let (cmp, dir) = if page.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(c) = page.after {
        w.values.push(Value::Integer(c.value));
        let v = w.values.len();
        w.values.push(Value::Integer(c.id));
        let i = w.values.len();
        w.raw(format!("({col}, id) {cmp} (?{v}, ?{i})"));
    }
    // The page's ids first, then their rows: the ids and sort values of a time range come
    // from the narrow logs_created_sorts index (schema V9) without reading the table, so
    // sorting a month by cost reads ~1M index entries, not ~1M whole rows with their content.
    let order = format!("ORDER BY {col} {dir}, id {dir}");
    let sql = format!(
        "SELECT {ROW_COLUMNS} FROM logs WHERE id IN \
           (SELECT id FROM logs {} {order} LIMIT {} OFFSET {}) {order}",
        w.sql(),
        page.limit.max(1),
        page.offset
    );
    (sql, w.values)
}

/// One page of rows, plus the cursor of the next page when there may be one.
pub fn search(
    conn: &Connection,
    f: &LogFilter,
    page: &PageRequest,
) -> Result<(Vec<LogRow>, Option<Cursor>), StoreError> {
    let (sql, values) = page_query(f, page);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows: Vec<LogRow> = stmt
        .query_map(rusqlite::params_from_iter(values.iter()), log_row)?
        .collect::<Result<_, _>>()?;
    let next = if rows.len() == page.limit.max(1) {
        rows.last().map(|r| Cursor {
            value: page.sort.value_of(r),
            id: r.id,
        })
    } else {
        None
    };
    Ok((rows, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::synthetic::{Spec, generate};

    const SORTS: [SortKey; 5] = [
        SortKey::CreatedAt,
        SortKey::Quota,
        SortKey::Latency,
        SortKey::PromptTokens,
        SortKey::CompletionTokens,
    ];

    /// Three days of generated rows in a real database file.
    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sluice.db")).unwrap();
        let spec = Spec {
            rows: 3_000,
            days: 3,
            users: 3,
            keys_per_user: 2,
            seed: 11,
        };
        generate(&store, &spec, |_| {}).unwrap();
        (dir, store)
    }

    fn page(sort: SortKey, descending: bool, limit: usize) -> PageRequest {
        PageRequest {
            sort,
            descending,
            limit,
            after: None,
            offset: 0,
        }
    }

    /// SQLite's plan for the page's query, one line per step.
    fn query_plan(
        c: &rusqlite::Connection,
        f: &LogFilter,
        p: &PageRequest,
    ) -> rusqlite::Result<Vec<String>> {
        let (sql, values) = page_query(f, p);
        c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?
            .query_map(rusqlite::params_from_iter(values.iter()), |r| {
                r.get::<_, String>(3)
            })?
            .collect()
    }

    /// Every sort, both ways, paged by cursor and by offset, gives the range's rows in the
    /// order a plain sort of them by (value, id) gives.
    #[test]
    fn pages_follow_a_plain_sort_of_the_range() {
        let (_dir, store) = store();
        let f = LogFilter {
            start: Some(crate::util::now_secs() - 2 * 86_400),
            ..Default::default()
        };
        store
            .read_blocking(|c| {
                let all: Vec<LogRow> = c
                    .prepare(&format!(
                        "SELECT {ROW_COLUMNS} FROM logs WHERE created_at >= ?1"
                    ))?
                    .query_map([f.start], log_row)?
                    .collect::<Result<_, _>>()?;
                assert!(all.len() > 1_000, "{} rows in range", all.len());
                for sort in SORTS {
                    for descending in [false, true] {
                        let mut want: Vec<(i64, i64)> =
                            all.iter().map(|r| (sort.value_of(r), r.id)).collect();
                        want.sort_unstable();
                        if descending {
                            want.reverse();
                        }
                        let want: Vec<i64> = want.into_iter().map(|(_, id)| id).collect();
                        let mut got = Vec::new();
                        let mut p = page(sort, descending, 97);
                        loop {
                            let (rows, next) = search(c, &f, &p)?;
                            got.extend(rows.iter().map(|r| r.id));
                            match next {
                                Some(n) => p.after = Some(n),
                                None => break,
                            }
                        }
                        assert_eq!(got, want, "{sort:?} descending={descending}");
                        let mut p = page(sort, descending, 10);
                        p.offset = 95;
                        let (rows, _) = search(c, &f, &p)?;
                        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                        assert_eq!(ids, want[95..105], "{sort:?} offset");
                    }
                }
                Ok(())
            })
            .unwrap();
    }

    /// A search for a type, status or group other than the common one (consume, 200,
    /// 'default') uses that column's partial index (schema V13) and finds what a plain filter
    /// of every row finds; the common values, left out of those indexes, are found too.
    #[test]
    fn rare_values_use_their_partial_indexes_and_every_value_is_found() {
        let (_dir, store) = store();
        store
            .writer
            .exec_blocking(|c| {
                // Some rows of another group and status, as a VIP group's failed calls are.
                c.execute_batch(
                    "UPDATE logs SET user_group = 'vip', status = 429 WHERE id % 50 = 0",
                )?;
                Ok(())
            })
            .unwrap();
        let only = |set: fn(&mut LogFilter)| {
            let mut f = LogFilter::default();
            set(&mut f);
            f
        };
        let cases: [(LogFilter, &str, &str); 6] = [
            (only(|f| f.types = vec![5]), "logs_type_created", "type = 5"),
            (
                only(|f| f.types = vec![1, 3]),
                "logs_type_created",
                "type IN (1, 3)",
            ),
            (
                only(|f| f.status = Some(429)),
                "logs_status_created",
                "status = 429",
            ),
            (
                only(|f| f.group = Some("vip".into())),
                "logs_group_created",
                "user_group = 'vip'",
            ),
            (only(|f| f.types = vec![2]), "", "type = 2"),
            (only(|f| f.status = Some(200)), "", "status = 200"),
        ];
        store
            .read_blocking(|c| {
                for (f, index, plain) in &cases {
                    let plan = query_plan(c, f, &page(SortKey::CreatedAt, true, 20))?;
                    if !index.is_empty() {
                        assert!(
                            plan.iter().any(|l| l.contains(&format!("INDEX {index} "))),
                            "{plain}: {plan:?}"
                        );
                    }
                    let want: Vec<i64> = c
                        .prepare(&format!(
                            "SELECT id FROM logs WHERE {plain} ORDER BY created_at DESC, id DESC LIMIT 20"
                        ))?
                        .query_map([], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    assert!(!want.is_empty(), "{plain}: the data has such rows");
                    let (rows, _) = search(c, f, &page(SortKey::CreatedAt, true, 20))?;
                    let got: Vec<i64> = rows.iter().map(|r| r.id).collect();
                    assert_eq!(got, want, "{plain}");
                }
                Ok(())
            })
            .unwrap();
    }

    /// Sorting a time range by any column reads ids and values from the logs_created_sorts
    /// index, never the table's whole rows (those only for the page itself, by id).
    #[test]
    fn a_sorted_range_reads_the_narrow_index() {
        let (_dir, store) = store();
        let f = LogFilter {
            start: Some(crate::util::now_secs() - 2 * 86_400),
            ..Default::default()
        };
        store
            .read_blocking(|c| {
                for sort in SORTS {
                    for after in [None, Some(Cursor { value: 5, id: 100 })] {
                        let mut p = page(sort, true, 50);
                        p.after = after;
                        let plan = query_plan(c, &f, &p)?;
                        assert!(
                            plan.iter()
                                .any(|l| l.contains("COVERING INDEX logs_created_sorts")),
                            "{sort:?} after {after:?}: {plan:?}"
                        );
                        assert!(
                            !plan.iter().any(|l| l == "SCAN logs"),
                            "{sort:?} after {after:?}: {plan:?}"
                        );
                    }
                }
                Ok(())
            })
            .unwrap();
    }
}
