//! Keystone v3: the `POST /v3/auth/tokens` body for password, application-credential and
//! token auth, the request itself (with `--debug` traces that never show a secret), and the
//! `container` endpoint of the returned catalog.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::AuthArgs;
use crate::CliError;

/// How to authenticate (`--os-auth-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `password` (alias `v3password`): a user and password, scoped to a project.
    Password,
    /// `v3applicationcredential`: an application credential id (or name and user) and secret.
    ApplicationCredential,
    /// `token` (alias `v3token`): an existing token, rescoped to the project for a catalog.
    Token,
}

impl Method {
    /// The method `--os-auth-type` names, or else the one the given credentials imply: an
    /// application credential if its id or name is given, a token if a token but no password
    /// is, a password otherwise.
    pub fn of(args: &AuthArgs) -> Result<Method, CliError> {
        let Some(t) = args.auth_type.as_deref() else {
            return Ok(
                if args.application_credential_id.is_some()
                    || args.application_credential_name.is_some()
                {
                    Method::ApplicationCredential
                } else if args.token.is_some() && args.password.is_none() {
                    Method::Token
                } else {
                    Method::Password
                },
            );
        };
        match t
            .trim()
            .to_ascii_lowercase()
            .replace(['-', '_'], "")
            .as_str()
        {
            "password" | "v3password" => Ok(Method::Password),
            "v3applicationcredential" | "applicationcredential" => {
                Ok(Method::ApplicationCredential)
            }
            "token" | "v3token" => Ok(Method::Token),
            _ => Err(CliError::Usage(format!(
                "unsupported auth type \"{t}\": use password, v3applicationcredential or token"
            ))),
        }
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::ApplicationCredential => "v3applicationcredential",
            Method::Token => "token",
        }
    }
}

/// The body of `POST /v3/auth/tokens` for `method`, or a usage error naming what is missing.
pub fn auth_body(args: &AuthArgs, method: Method) -> Result<Value, CliError> {
    let auth = match method {
        Method::Password => {
            let password = args.password.as_deref().ok_or_else(|| {
                CliError::Usage(
                    "password authentication needs a password: --os-password or OS_PASSWORD \
                     (or auth.password in clouds.yaml)"
                        .into(),
                )
            })?;
            let mut user = user(args).ok_or_else(|| {
                CliError::Usage(
                    "password authentication needs a user: --os-username (with \
                     --os-user-domain-name or --os-user-domain-id) or --os-user-id"
                        .into(),
                )
            })??;
            user["password"] = json!(password);
            json!({
                "identity": {"methods": ["password"], "password": {"user": user}},
                "scope": project_scope(args)?,
            })
        }
        Method::ApplicationCredential => {
            let secret = args
                .application_credential_secret
                .as_deref()
                .ok_or_else(|| {
                    CliError::Usage(
                        "application credential authentication needs \
                     --os-application-credential-secret"
                            .into(),
                    )
                })?;
            let cred = if let Some(id) = &args.application_credential_id {
                json!({"id": id, "secret": secret})
            } else if let Some(name) = &args.application_credential_name {
                let user = user(args).ok_or_else(|| {
                    CliError::Usage(
                        "--os-application-credential-name needs its user: --os-username (with \
                         --os-user-domain-name or --os-user-domain-id) or --os-user-id"
                            .into(),
                    )
                })??;
                json!({"name": name, "secret": secret, "user": user})
            } else {
                return Err(CliError::Usage(
                    "application credential authentication needs \
                     --os-application-credential-id (or --os-application-credential-name \
                     and a user)"
                        .into(),
                ));
            };
            // The credential is bound to its project: Keystone refuses any scope.
            json!({"identity": {
                "methods": ["application_credential"],
                "application_credential": cred,
            }})
        }
        Method::Token => {
            let token = args.token.as_deref().ok_or_else(|| {
                CliError::Usage("token authentication needs --os-token or OS_TOKEN".into())
            })?;
            json!({
                "identity": {"methods": ["token"], "token": {"id": token}},
                "scope": project_scope(args)?,
            })
        }
    };
    Ok(json!({ "auth": auth }))
}

/// The user by id, or by name in its domain; `None` if neither is given.
fn user(args: &AuthArgs) -> Option<Result<Value, CliError>> {
    if let Some(id) = &args.user_id {
        return Some(Ok(json!({ "id": id })));
    }
    let name = args.username.as_ref()?;
    Some(
        domain(&args.user_domain_id, &args.user_domain_name)
            .map(|d| json!({"name": name, "domain": d}))
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "user \"{name}\" needs its domain: --os-user-domain-name or \
                     --os-user-domain-id (e.g. Default)"
                ))
            }),
    )
}

fn domain(id: &Option<String>, name: &Option<String>) -> Option<Value> {
    match (id, name) {
        (Some(id), _) => Some(json!({ "id": id })),
        (None, Some(name)) => Some(json!({ "name": name })),
        (None, None) => None,
    }
}

fn project_scope(args: &AuthArgs) -> Result<Value, CliError> {
    if let Some(id) = &args.project_id {
        return Ok(json!({"project": {"id": id}}));
    }
    let Some(name) = &args.project_name else {
        return Err(CliError::Usage(
            "no project: set --os-project-name (with --os-project-domain-name) or \
             --os-project-id; a project-scoped token is needed for the service catalog"
                .into(),
        ));
    };
    let d = domain(&args.project_domain_id, &args.project_domain_name).ok_or_else(|| {
        CliError::Usage(format!(
            "project \"{name}\" needs its domain: --os-project-domain-name or \
             --os-project-domain-id (e.g. Default)"
        ))
    })?;
    Ok(json!({"project": {"name": name, "domain": d}}))
}

/// `body` with every password, secret and token id replaced by `***`, for `--debug`.
pub fn redacted(body: &Value) -> Value {
    fn walk(v: &mut Value, parent: Option<&str>) {
        match v {
            Value::Object(m) => {
                for (k, val) in m.iter_mut() {
                    let secret = matches!(k.as_str(), "password" | "secret")
                        || (parent == Some("token") && k == "id");
                    if secret && !val.is_object() {
                        *val = json!("***");
                    } else {
                        walk(val, Some(k));
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, parent)),
            _ => {}
        }
    }
    let mut v = body.clone();
    walk(&mut v, None);
    v
}

/// What Keystone issued.
#[derive(Debug)]
pub struct Issued {
    /// The new token (`X-Subject-Token`).
    pub token: String,
    /// `token.expires_at`, if Keystone said.
    pub expires_at: Option<DateTime<Utc>>,
    /// `token.catalog` (`null` if absent).
    pub catalog: Value,
}

/// `POST {auth_url}/auth/tokens` with `body`. A refusal is [`CliError::Auth`] with Keystone's
/// message, as the openstack CLI prints it.
pub fn issue(
    http: &reqwest::blocking::Client,
    auth_url: &str,
    body: &Value,
    debug: bool,
) -> Result<Issued, CliError> {
    let url = format!("{auth_url}/auth/tokens");
    if debug {
        eprintln!(
            "REQ: POST {url} -H 'Content-Type: application/json' -d '{}'",
            redacted(body)
        );
    }
    let send = || {
        http.post(&url)
            .header("Accept", "application/json")
            .json(body)
            .send()
    };
    // Issuing a token changes nothing, so a connection a busy Keystone dropped before
    // answering is tried once more.
    let resp = match send() {
        Err(e) if !e.is_timeout() && (e.is_connect() || e.is_request()) => {
            if debug {
                eprintln!("AUTH: {}; trying once more", chain(&e));
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
            send()
        }
        r => r,
    }
    .map_err(|e| CliError::Failed(format!("cannot reach Keystone at {url}: {}", chain(&e))))?;
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let rid = header("x-openstack-request-id");
    let token = header("x-subject-token");
    let text = resp
        .text()
        .map_err(|e| CliError::Failed(format!("reading Keystone's answer: {e}")))?;
    if debug {
        // The token travels in a header, never in this body.
        eprintln!(
            "RESP: [{status}] request-id {} {text}",
            rid.as_deref().unwrap_or("-")
        );
    }
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    if status >= 400 {
        let message = parsed
            .as_ref()
            .and_then(|v| v["error"]["message"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| text.trim().chars().take(300).collect());
        let rid = rid
            .map(|r| format!(" (Request-ID: {r})"))
            .unwrap_or_default();
        let msg = format!("{message} (HTTP {status}){rid}");
        return Err(if status >= 500 {
            CliError::Failed(format!("Keystone at {url} failed: {msg}"))
        } else {
            CliError::Auth(msg)
        });
    }
    let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
        CliError::Failed(format!(
            "Keystone at {url} answered {status} without an X-Subject-Token"
        ))
    })?;
    let parsed = parsed.unwrap_or(Value::Null);
    let expires_at = parsed["token"]["expires_at"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    Ok(Issued {
        token,
        expires_at,
        catalog: parsed["token"]["catalog"].clone(),
    })
}

/// An error with its causes (`error sending request: ... Connection refused`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s = format!("{s}: {t}");
        }
        cur = c.source();
    }
    s
}

/// The URL of the catalog's `container` endpoint on `interface` (in `region`, if given),
/// normalised to end in `/v1`.
pub fn container_endpoint(
    catalog: &Value,
    interface: &str,
    region: Option<&str>,
) -> Result<String, CliError> {
    let services = catalog.as_array().map(Vec::as_slice).unwrap_or_default();
    let found = services
        .iter()
        .filter(|s| s["type"] == "container")
        .flat_map(|s| {
            s["endpoints"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
        })
        .filter(|e| e["interface"] == interface)
        .filter(|e| region.is_none_or(|r| e["region_id"] == r || e["region"] == r))
        .find_map(|e| e["url"].as_str().filter(|u| !u.is_empty()));
    found.map(api_url).ok_or_else(|| {
        CliError::Auth(format!(
            "no `container` endpoint (interface {interface}, region {}) in the catalog; \
             is Zun registered in Keystone? --endpoint gives the capsule API's URL directly",
            region.unwrap_or("any")
        ))
    })
}

/// A capsule API URL with no trailing `/`, ending in `/v1`.
pub fn api_url(url: &str) -> String {
    versioned(url, "/v1")
}

/// A Keystone URL with no trailing `/`, ending in `/v3`.
pub fn keystone_url(url: &str) -> String {
    versioned(url, "/v3")
}

fn versioned(url: &str, version: &str) -> String {
    let u = url.trim().trim_end_matches('/');
    if u.ends_with(version) {
        u.to_owned()
    } else {
        format!("{u}{version}")
    }
}

/// The catalog interface: `public` unless given; `publicURL` (v2 style) means `public`.
pub fn interface(args: &AuthArgs) -> String {
    let i = args
        .interface
        .as_deref()
        .unwrap_or("public")
        .trim()
        .to_ascii_lowercase();
    i.strip_suffix("url").unwrap_or(&i).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalised() {
        assert_eq!(api_url("http://h:9517/"), "http://h:9517/v1");
        assert_eq!(api_url("http://h:9517/v1/"), "http://h:9517/v1");
        assert_eq!(keystone_url("http://h:5000"), "http://h:5000/v3");
        assert_eq!(
            keystone_url("http://h/identity/v3/"),
            "http://h/identity/v3"
        );
    }

    #[test]
    fn debug_bodies_hide_every_secret() {
        let args = AuthArgs {
            username: Some("demo".into()),
            user_domain_name: Some("Default".into()),
            password: Some("s3cret-pw".into()),
            project_id: Some("p".into()),
            ..Default::default()
        };
        let shown = redacted(&auth_body(&args, Method::Password).unwrap()).to_string();
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(shown.contains(r#""password":"***""#), "{shown}");
        assert!(shown.contains(r#""name":"demo""#), "{shown}");
        let args = AuthArgs {
            token: Some("tok-123".into()),
            project_id: Some("p".into()),
            ..Default::default()
        };
        let shown = redacted(&auth_body(&args, Method::Token).unwrap()).to_string();
        assert!(!shown.contains("tok-123"), "{shown}");
        let args = AuthArgs {
            application_credential_id: Some("ac".into()),
            application_credential_secret: Some("ac-secret".into()),
            ..Default::default()
        };
        let shown = redacted(&auth_body(&args, Method::ApplicationCredential).unwrap());
        assert_eq!(
            shown["auth"]["identity"]["application_credential"]["secret"],
            "***"
        );
    }

    #[test]
    fn the_method_follows_what_is_given() {
        let ac = AuthArgs {
            application_credential_id: Some("x".into()),
            password: Some("p".into()),
            ..Default::default()
        };
        assert_eq!(Method::of(&ac).unwrap(), Method::ApplicationCredential);
        let tok = AuthArgs {
            token: Some("t".into()),
            ..Default::default()
        };
        assert_eq!(Method::of(&tok).unwrap(), Method::Token);
        let alias = AuthArgs {
            auth_type: Some("v3password".into()),
            ..tok
        };
        assert_eq!(Method::of(&alias).unwrap(), Method::Password);
    }
}
