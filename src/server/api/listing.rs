//! The search and paging parameters shared by `GET /api/users`, `/api/keys` and
//! `/api/channels`. Without any of them a list answers the whole table as a bare array, as it
//! always did; with any of them it answers one page `{items, total, p, page_size}`.

use super::params::{self, MAX_PAGE_NUMBER, MAX_PAGE_SIZE};
use crate::error::ApiError;
use crate::store::listing::{ListQuery, Page, Table};
use serde::Deserialize;
use serde_json::{Value, json};

const DEFAULT_PAGE_SIZE: usize = 20;
const MAX_SEARCH_CHARS: usize = 128;

/// Every parameter the three lists take; each route refuses the ones that are not its own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub q: Option<String>,
    pub p: Option<usize>,
    pub page_size: Option<usize>,
    pub sort: Option<String>,
    pub order: Option<String>,
    /// Keys only.
    pub user_id: Option<i64>,
    /// Channels only.
    pub status: Option<String>,
}

impl ListParams {
    pub fn parse(query: &str) -> Result<ListParams, ApiError> {
        serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::BadRequest(format!("bad query parameter: {e}")))
    }

    /// The page asked for, or `None` for the whole list (no paging parameter given).
    pub fn query(&self, table: &Table) -> Result<Option<ListQuery>, ApiError> {
        let paged = self.q.is_some()
            || self.p.is_some()
            || self.page_size.is_some()
            || self.sort.is_some()
            || self.order.is_some();
        if !paged {
            return Ok(None);
        }
        let search = match &self.q {
            Some(s) if s.is_empty() || s.chars().count() > MAX_SEARCH_CHARS => {
                return Err(ApiError::BadRequest(format!(
                    "q must be 1 to {MAX_SEARCH_CHARS} characters"
                )));
            }
            other => other.clone(),
        };
        let p = params::in_range("p", self.p.unwrap_or(1), 1, MAX_PAGE_NUMBER)?;
        let size = params::in_range(
            "page_size",
            self.page_size.unwrap_or(DEFAULT_PAGE_SIZE),
            1,
            MAX_PAGE_SIZE,
        )?;
        let sort_name = self.sort.as_deref().unwrap_or("id");
        let sort = table.sort_index(sort_name).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "sort must be one of {}",
                table.sort_names().join(", ")
            ))
        })?;
        // Names and ids read naturally A→Z / oldest first; amounts and times largest first.
        let by_name = matches!(sort_name, "id" | "name" | "username");
        let descending = match self.order.as_deref() {
            None => !by_name,
            Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(ApiError::BadRequest("order must be asc or desc".into())),
        };
        Ok(Some(ListQuery {
            search,
            sort,
            descending,
            limit: size,
            offset: (p - 1) * size,
        }))
    }
}

/// The page object, with each item already serialised (money fields added).
pub fn page_json<T>(page: &Page<T>, q: &ListQuery, item: impl Fn(&T) -> Value) -> Value {
    json!({
        "items": page.items.iter().map(item).collect::<Vec<_>>(),
        "total": page.total,
        "p": q.offset / q.limit.max(1) + 1,
        "page_size": q.limit,
    })
}
