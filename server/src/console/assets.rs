//! The console's files, embedded in the binary. Each is answered with an
//! ETag and `Cache-Control: no-cache`: a browser keeps its copy and asks
//! each load whether it is still current (a 304), so a new binary's pages
//! are never mixed with an old one's scripts.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $path)),
        }
    };
}

const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("console.css", CSS),
    asset!("js/app.js", JS),
    asset!("js/api.js", JS),
    asset!("js/ui.js", JS),
    asset!("js/chart.js", JS),
    asset!("js/signin.js", JS),
    asset!("js/streams.js", JS),
    asset!("js/viewer.js", JS),
    asset!("js/firehose.js", JS),
    asset!("js/jobs.js", JS),
    asset!("js/plan.js", JS),
    asset!("js/results.js", JS),
    asset!("js/video.js", JS),
    asset!("vendor/hls.light.min.js", JS),
    asset!("vendor/hls.js-LICENSE.txt", "text/plain; charset=utf-8"),
];

/// Each asset's ETag, by its place in `ASSETS`.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let mut hasher = DefaultHasher::new();
            asset.body.hash(&mut hasher);
            let tag = format!("\"{}-{:016x}\"", env!("CARGO_PKG_VERSION"), hasher.finish());
            HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"0\""))
        })
        .collect()
});

/// What the pages may load and call: this server only. A record shown in
/// the data viewer is text, never markup, but should one slip through,
/// it cannot load or send anything elsewhere. hls.js runs its demuxer in
/// a worker made from a blob, and plays through a blob URL.
const POLICY: &str = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
     worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'";

fn serve(index: usize, request: &HeaderMap) -> Response {
    let (Some(asset), Some(etag)) = (ASSETS.get(index), ETAGS.get(index)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if asset.content_type == HTML {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(POLICY),
        );
    }
    let current = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim().as_bytes() == etag.as_bytes())
        });
    if current {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    (headers, asset.body).into_response()
}

/// `GET /console/{file}`.
pub async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS
        .iter()
        .position(|a| a.path == file && a.path != "index.html")
    {
        Some(index) => serve(index, &headers),
        None => (StatusCode::NOT_FOUND, "no such file in the console\n").into_response(),
    }
}

/// The console's page, for `GET /` from a browser.
pub fn index(headers: &HeaderMap) -> Response {
    let index = ASSETS.iter().position(|a| a.path == "index.html");
    serve(index.unwrap_or(usize::MAX), headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_and_page_has_its_type() {
        for asset in ASSETS {
            let expected = match asset.path.rsplit_once('.').map(|(_, ext)| ext) {
                Some("html") => HTML,
                Some("js") => JS,
                Some("css") => CSS,
                Some("txt") => "text/plain; charset=utf-8",
                other => panic!("{} has no known type ({other:?})", asset.path),
            };
            assert_eq!(asset.content_type, expected, "{}", asset.path);
            assert!(!asset.body.is_empty(), "{} is empty", asset.path);
        }
    }

    /// A file added to `server/console/` and not to `ASSETS` would be a
    /// page's 404.
    #[test]
    fn every_file_of_the_console_dir_is_served() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut pending = vec![root.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("console dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let relative = path.strip_prefix(&root).expect("under the root");
                let name = relative.to_str().expect("UTF-8 name");
                assert!(
                    ASSETS.iter().any(|a| a.path == name),
                    "{name} is not in ASSETS"
                );
            }
        }
    }

    #[test]
    fn a_current_copy_gets_a_304_and_an_old_one_the_file() {
        let first = index(&HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        let mut request = HeaderMap::new();
        request.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(index(&request).status(), StatusCode::NOT_MODIFIED);
        request.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"old\""));
        assert_eq!(index(&request).status(), StatusCode::OK);
    }
}
