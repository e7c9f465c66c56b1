//! `[oidc]`: which OpenID Connect issuers' JWT access tokens are accepted, and how their claims
//! become an identity.

use std::collections::BTreeMap;

use openidconnect::IssuerUrl;
use serde::Deserialize;

/// `[oidc]`: OpenID Connect bearer tokens (JWT access tokens, RFC 9068) in
/// `Authorization: Bearer`, accepted beside Keystone tokens. Without issuers (the default)
/// bearer tokens are not looked at.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// Clock skew allowed on `exp`, `nbf` and `iat`, seconds.
    pub leeway_seconds: u64,
    /// A token signed with an unknown key id refetches its issuer's JWKS at most this often,
    /// seconds (concurrent refetches are one).
    pub jwks_refresh_min_seconds: u64,
    /// Timeout of each request to a provider (discovery, JWKS), seconds.
    pub timeout_seconds: u64,
    /// Longest time a validated token is trusted without checking it again, seconds (never
    /// beyond its `exp`, and never once its signing key left the issuer's JWKS).
    pub token_cache_seconds: u64,
    /// Most validated tokens kept.
    pub token_cache_size: u64,
    /// `[[oidc.issuers]]`: the accepted issuers.
    pub issuers: Vec<IssuerConfig>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            leeway_seconds: 30,
            jwks_refresh_min_seconds: 10,
            timeout_seconds: 10,
            token_cache_seconds: 300,
            token_cache_size: 10_000,
            issuers: Vec::new(),
        }
    }
}

/// `[[oidc.issuers]]`: one accepted issuer.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The issuer identifier; a token's `iss` must equal it exactly.
    pub issuer: String,
    /// Where its discovery document is; default `<issuer>/.well-known/openid-configuration`.
    #[serde(default)]
    pub discovery_url: Option<String>,
    /// Audiences accepted; a token's `aud` must contain one of them.
    pub audiences: Vec<String>,
    /// The claim that is the identity's user id.
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// A claim that names the project; when configured and present it wins over `clients`.
    #[serde(default)]
    pub project_claim: Option<String>,
    /// A claim with the role names (an array of strings, or one space-separated string); when
    /// configured and present it wins over `clients`.
    #[serde(default)]
    pub roles_claim: Option<String>,
    /// `[oidc.issuers.clients.<client id>]`: project and roles of tokens issued to a client
    /// (the `client_id` claim, else `azp`, else `sub`).
    #[serde(default)]
    pub clients: BTreeMap<String, ClientMap>,
}

fn default_user_claim() -> String {
    "sub".into()
}

/// `[oidc.issuers.clients.<client id>]`: what a client's tokens stand for.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientMap {
    /// Project of the client's tokens (when the token has no project claim).
    #[serde(default)]
    pub project: Option<String>,
    /// Roles of the client's tokens (when the token has no roles claim).
    #[serde(default)]
    pub roles: Vec<String>,
}

impl OidcConfig {
    /// Whether bearer tokens are accepted at all.
    pub fn enabled(&self) -> bool {
        !self.issuers.is_empty()
    }

    /// Checks what parsing cannot: URLs, non-empty audiences, unique issuers.
    pub fn validate(&self) -> Result<(), String> {
        for (i, iss) in self.issuers.iter().enumerate() {
            if IssuerUrl::new(iss.issuer.clone()).is_err() {
                return Err(format!(
                    "[[oidc.issuers]] issuer {:?} is not a URL",
                    iss.issuer
                ));
            }
            if let Some(url) = &iss.discovery_url {
                if openidconnect::url::Url::parse(url).is_err() {
                    return Err(format!(
                        "[[oidc.issuers]] discovery_url {url:?} of issuer {} is not a URL",
                        iss.issuer
                    ));
                }
            }
            if iss.audiences.is_empty() || iss.audiences.iter().any(String::is_empty) {
                return Err(format!(
                    "[[oidc.issuers]] issuer {} needs audiences, none empty",
                    iss.issuer
                ));
            }
            if iss.user_claim.is_empty() {
                return Err(format!(
                    "[[oidc.issuers]] issuer {}: user_claim must not be empty",
                    iss.issuer
                ));
            }
            if self.issuers[..i].iter().any(|o| o.issuer == iss.issuer) {
                return Err(format!(
                    "[[oidc.issuers]] issuer {} is configured twice",
                    iss.issuer
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let c: OidcConfig = toml::from_str(
            r#"
leeway_seconds = 5
[[issuers]]
issuer = "http://127.0.0.1:9100"
audiences = ["http://127.0.0.1:9517"]
roles_claim = "roles"
[issuers.clients.capsule-ci]
project = "p-oidc"
roles = ["member", "reader"]
"#,
        )
        .unwrap();
        assert_eq!(c.leeway_seconds, 5);
        assert_eq!(c.jwks_refresh_min_seconds, 10);
        let i = &c.issuers[0];
        assert_eq!(i.user_claim, "sub");
        assert_eq!(i.project_claim, None);
        assert_eq!(i.clients["capsule-ci"].project.as_deref(), Some("p-oidc"));
        assert!(c.validate().is_ok());
        assert!(c.enabled());
        assert!(!OidcConfig::default().enabled());
    }

    #[test]
    fn refuses_bad_issuers() {
        let issuer = |issuer: &str, aud: &[&str]| IssuerConfig {
            issuer: issuer.into(),
            discovery_url: None,
            audiences: aud.iter().map(|a| a.to_string()).collect(),
            user_claim: "sub".into(),
            project_claim: None,
            roles_claim: None,
            clients: BTreeMap::new(),
        };
        for issuers in [
            vec![issuer("not a url", &["a"])],
            vec![issuer("http://x", &[])],
            vec![issuer("http://x", &[""])],
            vec![issuer("http://x", &["a"]), issuer("http://x", &["b"])],
        ] {
            let c = OidcConfig {
                issuers,
                ..Default::default()
            };
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
