//! OpenID Connect bearer tokens for services that call the capsule API without a Keystone
//! user: an access token given as it is (`--os-auth-type v3oidcaccesstoken`, or
//! `--os-access-token`/`--bearer-token` alone), or one obtained with the client-credentials
//! grant from the issuer's token endpoint (`--os-auth-type v3oidcclientcredentials` with
//! `--os-discovery-endpoint`, `--os-client-id`, `--os-client-secret`). Either is sent as
//! `Authorization: Bearer`, to the `--endpoint` given (there is no catalog without Keystone).

use serde_json::Value;

use super::AuthArgs;
use crate::CliError;

/// How a bearer token is had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Given as it is.
    AccessToken,
    /// Asked for with the client-credentials grant.
    ClientCredentials,
}

impl Kind {
    /// The bearer kind `--os-auth-type` names, or, without one, the kind the given
    /// credentials imply; `None` for Keystone's kinds.
    pub fn of(args: &AuthArgs) -> Option<Kind> {
        match args.auth_type.as_deref() {
            Some(t) => match t
                .trim()
                .to_ascii_lowercase()
                .replace(['-', '_'], "")
                .as_str()
            {
                "v3oidcaccesstoken" | "oidcaccesstoken" | "bearer" => Some(Kind::AccessToken),
                "v3oidcclientcredentials" | "oidcclientcredentials" => {
                    Some(Kind::ClientCredentials)
                }
                _ => None,
            },
            None if args.access_token.is_some() => Some(Kind::AccessToken),
            None if args.client_id.is_some() && args.client_secret.is_some() => {
                Some(Kind::ClientCredentials)
            }
            None => None,
        }
    }
}

/// The capsule API's own URL (without `/v1`), the default audience of an asked-for token.
fn audience_of(endpoint: &str) -> String {
    endpoint
        .trim_end_matches('/')
        .trim_end_matches("/v1")
        .to_owned()
}

/// The bearer token `args` give or obtain, for the API at `endpoint`.
pub fn token(
    kind: Kind,
    args: &AuthArgs,
    http: &reqwest::blocking::Client,
    endpoint: &str,
    debug: bool,
) -> Result<String, CliError> {
    match kind {
        Kind::AccessToken => args.access_token.clone().ok_or_else(|| {
            CliError::Usage(
                "bearer-token authentication needs --os-access-token (or --bearer-token, \
                 OS_ACCESS_TOKEN)"
                    .into(),
            )
        }),
        Kind::ClientCredentials => client_credentials(args, http, endpoint, debug),
    }
}

fn client_credentials(
    args: &AuthArgs,
    http: &reqwest::blocking::Client,
    endpoint: &str,
    debug: bool,
) -> Result<String, CliError> {
    let need = |v: &Option<String>, flag: &str| {
        v.clone().ok_or_else(|| {
            CliError::Usage(format!(
                "the client-credentials grant needs {flag} (and --os-discovery-endpoint, \
                 --os-client-id, --os-client-secret)"
            ))
        })
    };
    let discovery = need(&args.discovery_endpoint, "--os-discovery-endpoint")?;
    let client_id = need(&args.client_id, "--os-client-id")?;
    let secret = need(&args.client_secret, "--os-client-secret")?;
    let scope = args
        .openid_scope
        .clone()
        .unwrap_or_else(|| "capsule".into());
    let audience = args
        .oidc_audience
        .clone()
        .unwrap_or_else(|| audience_of(endpoint));
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        CliError::Auth(format!("cannot {what} ({discovery}): {e}"))
    };
    if debug {
        eprintln!("AUTH: GET {discovery}");
    }
    let meta: Value = http
        .get(&discovery)
        .send()
        .and_then(reqwest::blocking::Response::error_for_status)
        .and_then(reqwest::blocking::Response::json)
        .map_err(|e| failed("read the issuer's discovery document", &e))?;
    let token_endpoint = meta["token_endpoint"].as_str().ok_or_else(|| {
        CliError::Auth(format!(
            "the discovery document at {discovery} names no token_endpoint"
        ))
    })?;
    if debug {
        eprintln!(
            "AUTH: POST {token_endpoint} grant_type=client_credentials client_id={client_id} \
             scope={scope} resource={audience} (secret not shown)"
        );
    }
    let resp = http
        .post(token_endpoint)
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", scope.as_str()),
            ("resource", audience.as_str()),
        ])
        .send()
        .map_err(|e| failed("reach the token endpoint", &e))?;
    let status = resp.status();
    let body: Value = resp.json().unwrap_or(Value::Null);
    if !status.is_success() {
        let why = body["error_description"]
            .as_str()
            .or(body["error"].as_str())
            .unwrap_or("no reason given");
        return Err(CliError::Auth(format!(
            "the issuer refused client {client_id} (HTTP {}): {why}",
            status.as_u16()
        )));
    }
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| CliError::Auth(format!("{token_endpoint} answered no access_token")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_auth_type_or_credentials() {
        let mut a = AuthArgs {
            auth_type: Some("v3oidcaccesstoken".into()),
            ..Default::default()
        };
        assert_eq!(Kind::of(&a), Some(Kind::AccessToken));
        a.auth_type = Some("v3oidc-client_credentials".into());
        assert_eq!(Kind::of(&a), Some(Kind::ClientCredentials));
        a.auth_type = Some("password".into());
        assert_eq!(Kind::of(&a), None);
        let given = AuthArgs {
            access_token: Some("t".into()),
            ..Default::default()
        };
        assert_eq!(Kind::of(&given), Some(Kind::AccessToken));
        let client = AuthArgs {
            client_id: Some("c".into()),
            client_secret: Some("s".into()),
            ..Default::default()
        };
        assert_eq!(Kind::of(&client), Some(Kind::ClientCredentials));
        assert_eq!(Kind::of(&AuthArgs::default()), None);
    }

    #[test]
    fn the_default_audience_is_the_api_itself() {
        assert_eq!(
            audience_of("http://127.0.0.1:9517/v1"),
            "http://127.0.0.1:9517"
        );
        assert_eq!(
            audience_of("https://cloud/container/v1/"),
            "https://cloud/container"
        );
    }
}
