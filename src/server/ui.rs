//! The embedded web UI (`frontend/dist`, built by `make frontend`).

use crate::error::ApiError;
use crate::web::{Resp, full, with_type};
use http::{HeaderValue, StatusCode, header};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "frontend/dist/"]
struct Assets;

/// Serves a file of the UI. Paths are matched against the embedded file list only; anything
/// that looks like traversal or encoding tricks is refused before the lookup (in debug builds
/// rust-embed reads from disk, so this matters there).
pub fn serve(path: &str) -> Resp {
    let rel = path.trim_start_matches('/');
    let suspicious =
        rel.contains("..") || rel.contains('\\') || rel.contains('%') || rel.contains('\0');
    if suspicious {
        return not_found();
    }
    let rel = if rel.is_empty() { "index.html" } else { rel };
    if let Some(file) = Assets::get(rel) {
        return file_response(rel, file);
    }
    // Client-side routes (no file extension) get the app shell.
    if !rel.rsplit('/').next().unwrap_or("").contains('.')
        && let Some(file) = Assets::get("index.html")
    {
        return file_response("index.html", file);
    }
    not_found()
}

fn not_found() -> Resp {
    crate::web::error(&ApiError::NotFound("no such page".into()))
}

fn file_response(name: &str, file: rust_embed::EmbeddedFile) -> Resp {
    let mime = file.metadata.mimetype().to_string();
    let mut r = with_type(
        StatusCode::OK,
        "application/octet-stream",
        full(file.data.into_owned()),
    );
    if let Ok(v) = HeaderValue::from_str(&mime) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    // Vite puts a content hash in asset names: those can be cached for good; the shell cannot.
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}
