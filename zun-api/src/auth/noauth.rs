//! `noauth`: the identity comes from trusted `X-User-Id`, `X-Project-Id` and `X-Roles` headers.
//! Only for tests and single-user development; never the default.

use std::sync::Arc;

use axum::http::HeaderMap;

use super::{AuthMethod, Identity};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The identity the headers describe; none without `X-User-Id`.
pub fn identity(headers: &HeaderMap) -> Option<Arc<Identity>> {
    let user_id = header(headers, "x-user-id")?.to_owned();
    let roles = header(headers, "x-roles")
        .map(|r| {
            r.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Some(Arc::new(Identity {
        user_name: Some(user_id.clone()),
        user_id,
        user_domain_id: Some("default".into()),
        project_id: header(headers, "x-project-id").map(str::to_owned),
        project_name: header(headers, "x-project-name").map(str::to_owned),
        project_domain_id: Some("default".into()),
        roles,
        expires_at: None,
        method: AuthMethod::Noauth,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_headers() {
        let mut h = HeaderMap::new();
        assert!(identity(&h).is_none());
        h.insert("x-user-id", "alice".parse().unwrap());
        h.insert("x-project-id", "p1".parse().unwrap());
        h.insert("x-roles", "member, reader,".parse().unwrap());
        let id = identity(&h).unwrap();
        assert_eq!(id.user_id, "alice");
        assert_eq!(id.project_id.as_deref(), Some("p1"));
        assert_eq!(id.roles, vec!["member", "reader"]);
    }
}
