//! `GET /ui/`: the cluster view, a single page served from the binary itself.
//!
//! The page's three files live next to this module (`ui/index.html`, `ui/app.js`,
//! `ui/style.css`) and are compiled in with `include_str!`: installing the agent installs its
//! UI, nothing is built at install time and nothing is fetched from the network. The page is a
//! client of the API like any other (`/v1/info`, `/v1/members`, `/v1/kv`, `/v1/events`,
//! `/metrics`), so it sees exactly what the API allows, behind the same `Host` check and the
//! same write token.
//!
//! The memberlist agent serves the same page (`memberlist::http`); the page asks `/v1/health`
//! which API it is talking to.
//!
//! Only the names in [`ASSETS`] are served: the path is a key into that table, never a file
//! name, so `/ui/../../etc/passwd` or any unknown name is a 404. Every reply carries a
//! Content-Security-Policy that allows scripts, styles and connections from this origin only
//! (no inline script, no `eval`), so a member name or a key value that smuggles markup in can
//! at worst render as text.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The policy of every UI reply: this origin's scripts, styles and API only.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// An embedded file: its name under `/ui/`, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// Every file the UI serves; `""` is `/ui/` itself.
const ASSETS: &[Asset] = &[
    Asset {
        name: "",
        content_type: "text/html; charset=utf-8",
        body: include_str!("ui/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "application/javascript; charset=utf-8",
        body: include_str!("ui/app.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("ui/style.css"),
    },
];

/// `GET /ui`: the page lives at `/ui/`, so that its relative asset links resolve.
pub(crate) async fn redirect() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, "/ui/")],
        "the UI is at /ui/\n",
    )
        .into_response()
}

/// `GET /ui/`.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    serve("", &headers)
}

/// `GET /ui/NAME`.
pub(crate) async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}

fn serve(name: &str, request: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        let mut response = (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no such UI file\n",
        )
            .into_response();
        secure(response.headers_mut());
        return response;
    };
    let etag = etag(asset.body);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let headers = response.headers_mut();
    secure(headers);
    // Revalidated every time (an upgraded binary serves new files under the same names); the
    // ETag makes that a 304 without a body.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    response
}

/// The headers every UI reply carries.
fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// A strong validator of a file's bytes: FNV-1a, 64 bits, quoted.
fn etag(body: &str) -> String {
    let hash = body.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_embedded_names_are_served_with_their_types() {
        let none = HeaderMap::new();
        let page = serve("", &none);
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(
            page.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert_eq!(
            serve("app.js", &none).headers()[header::CONTENT_TYPE],
            "application/javascript; charset=utf-8"
        );
        assert_eq!(
            serve("style.css", &none).headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
        for bad in ["../../etc/passwd", "index.html", "app.js/", "APP.JS", "x"] {
            let r = serve(bad, &none);
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
            assert!(r.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        }
    }

    #[test]
    fn a_matching_etag_is_a_304_and_every_reply_has_the_policy() {
        let first = serve("app.js", &HeaderMap::new());
        let tag = first.headers()[header::ETAG].clone();
        assert_eq!(first.headers()[header::CACHE_CONTROL], "no-cache");
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, tag);
        let second = serve("app.js", &again);
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(
            second.headers()[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        assert_ne!(etag("a"), etag("b"));
    }

    #[test]
    fn the_page_has_no_inline_script_and_loads_its_files_by_relative_name() {
        let page = ASSETS[0].body;
        assert!(page.contains(r#"<script src="app.js" defer></script>"#));
        assert!(page.contains(r#"href="style.css""#));
        // Every <script> has a src: the policy would block an inline one.
        assert_eq!(
            page.matches("<script").count(),
            page.matches("<script src=").count()
        );
        // No inline event handler (` onclick=`...): the policy would block it too.
        let handler = page.match_indices(" on").any(|(at, _)| {
            let rest = &page[at + 3..];
            let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            letters > 0 && rest[letters..].starts_with('=')
        });
        assert!(!handler, "an inline event handler in index.html");
    }
}
