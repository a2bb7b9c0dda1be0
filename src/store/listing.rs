//! Search, sort and page for the admin lists (users, keys, channels): a name substring or an
//! exact id, a sort column from each table's allow-list, offset paging with the total count.
//! The WHERE clause is built here from fixed SQL and bound values only.

use super::StoreError;
use rusqlite::types::Value;
use rusqlite::{Connection, Row};

/// What a list request asks for, already validated by the API layer.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Substring of the searched columns (case-insensitive for ASCII), or an exact id.
    pub search: Option<String>,
    /// Index into the table's sort allow-list.
    pub sort: usize,
    pub descending: bool,
    pub limit: usize,
    pub offset: usize,
}

/// One page and the number of rows matching the search on every page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
}

/// How one table is listed: its columns, the columns a search matches, its sort columns.
pub struct Table {
    pub name: &'static str,
    pub columns: &'static str,
    /// Text columns matched by substring.
    pub searched: &'static [&'static str],
    /// (name in the API, SQL expression sorted on).
    pub sorts: &'static [(&'static str, &'static str)],
}

impl Table {
    /// The allow-list index of a sort name.
    pub fn sort_index(&self, name: &str) -> Option<usize> {
        self.sorts.iter().position(|(n, _)| *n == name)
    }

    pub fn sort_names(&self) -> Vec<&'static str> {
        self.sorts.iter().map(|(n, _)| *n).collect()
    }
}

/// `%`, `_` and the escape character itself match literally.
fn like_pattern(s: &str) -> String {
    let mut p = String::with_capacity(s.len() + 2);
    p.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// A page of `table` filtered by the search and by `extra`: fixed SQL conditions, each with
/// at most one `?` and its value.
pub fn page<T>(
    conn: &Connection,
    table: &Table,
    q: &ListQuery,
    extra: &[(&str, Option<Value>)],
    from_row: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Page<T>, StoreError> {
    let mut parts: Vec<String> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if let Some(s) = &q.search {
        values.push(Value::Text(like_pattern(s)));
        let n = values.len();
        let mut any: Vec<String> = table
            .searched
            .iter()
            .map(|c| format!("{c} LIKE ?{n} ESCAPE '\\'"))
            .collect();
        if let Ok(id) = s.trim().parse::<i64>() {
            values.push(Value::Integer(id));
            any.push(format!("id = ?{}", values.len()));
        }
        parts.push(format!("({})", any.join(" OR ")));
    }
    for (sql, v) in extra {
        match v {
            Some(v) => {
                values.push(v.clone());
                parts.push(sql.replace('?', &format!("?{}", values.len())));
            }
            None => parts.push((*sql).to_string()),
        }
    }
    let filter = if parts.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", parts.join(" AND "))
    };
    let total: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM {} {filter}", table.name))?
        .query_row(rusqlite::params_from_iter(values.iter()), |r| r.get(0))?;
    let (_, col) = table.sorts.get(q.sort).copied().unwrap_or(("id", "id"));
    let dir = if q.descending { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT {} FROM {} {filter} ORDER BY {col} {dir}, id {dir} LIMIT {} OFFSET {}",
        table.columns,
        table.name,
        q.limit.max(1),
        q.offset
    );
    let items = conn
        .prepare_cached(&sql)?
        .query_map(rusqlite::params_from_iter(values.iter()), from_row)?
        .collect::<Result<_, _>>()?;
    Ok(Page { items, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Table = Table {
        name: "t",
        columns: "id, name",
        searched: &["name"],
        sorts: &[("id", "id"), ("name", "name COLLATE NOCASE")],
    };

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO t (name) VALUES ('alpha'), ('Beta'), ('al_pha'), ('gamma'), ('100%');",
        )
        .unwrap();
        c
    }

    fn names(p: &Page<(i64, String)>) -> Vec<&str> {
        p.items.iter().map(|(_, n)| n.as_str()).collect()
    }

    fn run(q: ListQuery) -> Page<(i64, String)> {
        page(&db(), &T, &q, &[], |r| Ok((r.get(0)?, r.get(1)?))).unwrap()
    }

    #[test]
    fn search_is_a_literal_substring_or_an_id() {
        let q = |s: &str| ListQuery {
            search: Some(s.into()),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(names(&run(q("AL"))), ["alpha", "al_pha"]);
        // `_` and `%` are literal, not wildcards.
        assert_eq!(names(&run(q("l_p"))), ["al_pha"]);
        assert_eq!(names(&run(q("0%"))), ["100%"]);
        // A number matches the id (and names containing it).
        assert_eq!(names(&run(q("2"))), ["Beta"]);
        assert_eq!(run(q("zzz")).total, 0);
    }

    #[test]
    fn pages_sort_and_count_every_match() {
        let p = run(ListQuery {
            sort: 1,
            limit: 2,
            offset: 2,
            ..Default::default()
        });
        assert_eq!(p.total, 5);
        assert_eq!(names(&p), ["alpha", "Beta"]);
        let p = run(ListQuery {
            descending: true,
            limit: 2,
            ..Default::default()
        });
        assert_eq!(p.items[0].0, 5);
    }
}
