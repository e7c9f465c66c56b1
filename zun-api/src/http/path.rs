//! Trailing slashes on the Cinder and Neutron APIs: `/v3/` and `/v2.0/security-groups/` mean
//! the same as without the slash. (Zun's own path normalization is `api::zun::normalize_path`.)

use axum::extract::Request;

/// Strips the trailing slashes of the request's path. A path of slashes only becomes `/` when
/// `root` is set (the Cinder API); otherwise (the Neutron API) it is left as it is.
pub fn strip_trailing_slashes(req: &mut Request, root: bool) {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() && root {
            "/"
        } else {
            trimmed
        };
        let pq = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = pq.parse() {
            *req.uri_mut() = uri;
        }
    }
}
