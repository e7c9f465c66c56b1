//! Checks of a verified token's claims (audience, times) and their mapping to an identity:
//! pure functions of the claims, the issuer's configuration and the time.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::Rejection;
use crate::auth::{AuthMethod, Identity};
use crate::config::oidc::IssuerConfig;

/// A JWT's claims set.
pub(super) type Claims = Map<String, Value>;

/// A NumericDate claim, in whole seconds (fractions dropped).
fn numeric_date(claims: &Claims, name: &str) -> Result<Option<i64>, Rejection> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or(Rejection::Malformed),
    }
}

/// Checks `exp` (required, not past), `nbf` and `iat` (not in the future), each with `leeway`
/// seconds, at unix time `now`; returns `exp`.
pub(super) fn check_times(claims: &Claims, now: i64, leeway: i64) -> Result<i64, Rejection> {
    let exp = numeric_date(claims, "exp")?.ok_or(Rejection::NoExpiry)?;
    if now >= exp.saturating_add(leeway) {
        return Err(Rejection::Expired);
    }
    if let Some(nbf) = numeric_date(claims, "nbf")? {
        if nbf > now.saturating_add(leeway) {
            return Err(Rejection::NotYetValid);
        }
    }
    if let Some(iat) = numeric_date(claims, "iat")? {
        if iat > now.saturating_add(leeway) {
            return Err(Rejection::IssuedInFuture);
        }
    }
    Ok(exp)
}

/// Checks that `aud` (a string or an array of strings) contains one of `accepted`.
pub(super) fn check_audience(claims: &Claims, accepted: &[String]) -> Result<(), Rejection> {
    let ok = match claims.get("aud") {
        Some(Value::String(a)) => accepted.contains(a),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| accepted.iter().any(|x| x == a)),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Rejection::Audience)
    }
}

fn string_claim<'c>(claims: &'c Claims, name: &str) -> Option<&'c str> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The client a token was issued to: `client_id` (RFC 9068), else `azp`, else `sub`.
pub(super) fn client_id(claims: &Claims) -> Option<&str> {
    ["client_id", "azp", "sub"]
        .into_iter()
        .find_map(|c| string_claim(claims, c))
}

/// Role names from a roles claim: an array of strings, or one space-separated string.
fn roles_from(value: &Value) -> Result<Vec<String>, Rejection> {
    match value {
        Value::String(s) => Ok(s.split_whitespace().map(str::to_owned).collect()),
        Value::Array(list) => list
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(Rejection::MalformedRoles)
            })
            .filter(|r| r.as_ref().map_or(true, |s| !s.is_empty()))
            .collect(),
        _ => Err(Rejection::MalformedRoles),
    }
}

/// The identity the (already verified) claims describe under `issuer`'s mapping: project and
/// roles from their claims when configured and present, else from the client's map. A token
/// with no project is refused: every capsule belongs to a project.
pub(super) fn identity(
    claims: &Claims,
    issuer: &IssuerConfig,
    exp: i64,
) -> Result<Identity, Rejection> {
    let user_id = string_claim(claims, &issuer.user_claim).ok_or(Rejection::NoUser)?;
    let client = client_id(claims).and_then(|c| issuer.clients.get(c));
    let from_map = || client.and_then(|c| c.project.clone());
    let project = match issuer.project_claim.as_deref().and_then(|c| claims.get(c)) {
        None | Some(Value::Null) => from_map(),
        Some(Value::String(p)) if p.is_empty() => from_map(),
        Some(Value::String(p)) => Some(p.clone()),
        Some(_) => return Err(Rejection::MalformedProject),
    };
    let project_id = project.ok_or(Rejection::NoProject)?;
    let roles = match issuer.roles_claim.as_deref().and_then(|c| claims.get(c)) {
        Some(Value::Null) | None => client.map(|c| c.roles.clone()).unwrap_or_default(),
        Some(v) => roles_from(v)?,
    };
    Ok(Identity {
        user_id: user_id.to_owned(),
        user_name: None,
        user_domain_id: None,
        project_id: Some(project_id),
        project_name: None,
        project_domain_id: None,
        roles,
        expires_at: DateTime::<Utc>::from_timestamp(exp, 0),
        method: AuthMethod::Oidc,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::config::oidc::ClientMap;

    fn claims(v: Value) -> Claims {
        v.as_object().unwrap().clone()
    }

    fn issuer() -> IssuerConfig {
        let mut clients = BTreeMap::new();
        clients.insert(
            "capsule-ci".to_owned(),
            ClientMap {
                project: Some("p-oidc".into()),
                roles: vec!["member".into(), "reader".into()],
            },
        );
        clients.insert("no-project".to_owned(), ClientMap::default());
        IssuerConfig {
            issuer: "http://op".into(),
            discovery_url: None,
            audiences: vec!["http://api".into(), "api2".into()],
            user_claim: "sub".into(),
            project_claim: None,
            roles_claim: None,
            clients,
        }
    }

    #[test]
    fn audience_as_string_or_array() {
        let acc = issuer().audiences;
        let ok = |aud: Value| check_audience(&claims(json!({ "aud": aud })), &acc);
        assert_eq!(ok(json!("http://api")), Ok(()));
        assert_eq!(ok(json!(["other", "api2"])), Ok(()));
        assert_eq!(ok(json!("other")), Err(Rejection::Audience));
        assert_eq!(ok(json!(["other", 3])), Err(Rejection::Audience));
        assert_eq!(ok(json!([])), Err(Rejection::Audience));
        assert_eq!(ok(json!(null)), Err(Rejection::Audience));
        assert_eq!(ok(json!({"a": "http://api"})), Err(Rejection::Audience));
        assert_eq!(
            check_audience(&claims(json!({})), &acc),
            Err(Rejection::Audience)
        );
    }

    #[test]
    fn times_with_leeway() {
        let now = 1_000_000;
        let t = |v: Value| check_times(&claims(v), now, 30);
        assert_eq!(t(json!({"exp": now + 1})), Ok(now + 1));
        assert_eq!(t(json!({"exp": now - 29})), Ok(now - 29));
        assert_eq!(t(json!({"exp": now - 30})), Err(Rejection::Expired));
        assert_eq!(t(json!({"exp": (now - 10) as f64 + 0.5})), Ok(now - 10));
        assert_eq!(t(json!({})), Err(Rejection::NoExpiry));
        assert_eq!(t(json!({"exp": "soon"})), Err(Rejection::Malformed));
        let exp = now + 600;
        assert!(t(json!({"exp": exp, "nbf": now + 30, "iat": now + 30})).is_ok());
        assert_eq!(
            t(json!({"exp": exp, "nbf": now + 31})),
            Err(Rejection::NotYetValid)
        );
        assert_eq!(
            t(json!({"exp": exp, "iat": now + 31})),
            Err(Rejection::IssuedInFuture)
        );
        assert_eq!(
            check_times(&claims(json!({"exp": now - 1})), now, 0),
            Err(Rejection::Expired)
        );
    }

    #[test]
    fn client_maps_give_project_and_roles() {
        let iss = issuer();
        let id = identity(
            &claims(json!({"sub": "capsule-ci", "client_id": "capsule-ci"})),
            &iss,
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(id.user_id, "capsule-ci");
        assert_eq!(id.project_id.as_deref(), Some("p-oidc"));
        assert_eq!(id.roles, vec!["member", "reader"]);
        assert_eq!(id.method, AuthMethod::Oidc);
        assert_eq!(id.expires_at.unwrap().timestamp(), 1_700_000_000);
        // azp, then sub, name the client when client_id is absent.
        for c in [
            json!({"sub": "u1", "azp": "capsule-ci"}),
            json!({"sub": "capsule-ci"}),
        ] {
            let id = identity(&claims(c), &iss, 1).unwrap();
            assert_eq!(id.project_id.as_deref(), Some("p-oidc"));
        }
        for c in [
            json!({"sub": "u1", "client_id": "unknown"}),
            json!({"sub": "u1", "client_id": "no-project"}),
        ] {
            assert_eq!(identity(&claims(c), &iss, 1), Err(Rejection::NoProject));
        }
        assert_eq!(
            identity(&claims(json!({"client_id": "capsule-ci"})), &iss, 1),
            Err(Rejection::NoUser)
        );
    }

    #[test]
    fn claims_win_over_client_maps() {
        let iss = IssuerConfig {
            project_claim: Some("project_id".into()),
            roles_claim: Some("roles".into()),
            user_claim: "email".into(),
            ..issuer()
        };
        let c = json!({"sub": "x", "email": "a@b", "client_id": "capsule-ci",
                       "project_id": "p2", "roles": ["admin", "reader"]});
        let id = identity(&claims(c), &iss, 1).unwrap();
        assert_eq!(id.user_id, "a@b");
        assert_eq!(id.project_id.as_deref(), Some("p2"));
        assert_eq!(id.roles, vec!["admin", "reader"]);
        // Claims absent: the map.
        let id = identity(
            &claims(json!({"email": "a@b", "client_id": "capsule-ci"})),
            &iss,
            1,
        )
        .unwrap();
        assert_eq!(id.project_id.as_deref(), Some("p-oidc"));
        assert_eq!(id.roles, vec!["member", "reader"]);
        // Without a map either: no project.
        assert_eq!(
            identity(&claims(json!({"email": "a@b", "roles": "member"})), &iss, 1),
            Err(Rejection::NoProject)
        );
    }

    #[test]
    fn roles_claim_forms() {
        let iss = IssuerConfig {
            roles_claim: Some("roles".into()),
            ..issuer()
        };
        let roles = |r: Value| {
            identity(
                &claims(json!({"sub": "u", "client_id": "capsule-ci", "roles": r})),
                &iss,
                1,
            )
            .map(|i| i.roles)
        };
        assert_eq!(
            roles(json!(["member", "reader"])),
            Ok(vec!["member".into(), "reader".into()])
        );
        assert_eq!(
            roles(json!("  member   reader ")),
            Ok(vec!["member".into(), "reader".into()])
        );
        assert_eq!(roles(json!("")), Ok(vec![]));
        assert_eq!(roles(json!([])), Ok(vec![]));
        assert_eq!(roles(json!(["member", ""])), Ok(vec!["member".into()]));
        assert_eq!(
            roles(json!(null)),
            Ok(vec!["member".into(), "reader".into()])
        );
        assert_eq!(roles(json!(["member", 1])), Err(Rejection::MalformedRoles));
        assert_eq!(
            roles(json!({"member": true})),
            Err(Rejection::MalformedRoles)
        );
        assert_eq!(roles(json!(7)), Err(Rejection::MalformedRoles));
    }

    #[test]
    fn project_claim_must_be_a_string() {
        let iss = IssuerConfig {
            project_claim: Some("project_id".into()),
            ..issuer()
        };
        assert_eq!(
            identity(&claims(json!({"sub": "u", "project_id": ["p"]})), &iss, 1),
            Err(Rejection::MalformedProject)
        );
    }
}
