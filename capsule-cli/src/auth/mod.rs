//! Who the caller is and where the API is: `--os-*` flags, `OS_*` variables and `clouds.yaml`
//! (with `secure.yaml`), Keystone v3 password, application-credential and token auth, token
//! reuse while valid, and the `container` endpoint from the catalog.
//!
//! [`session`] reads the files and variables of the environment; [`session_with`] takes them
//! as [`Paths`], so tests (and callers with their own layout) need no process-wide state.

pub mod cache;
pub mod clouds;
pub mod keystone;
pub mod oidc;

use std::path::PathBuf;

use crate::CliError;
use keystone::Method;

/// The `--os-*` flags (each also read from its `OS_*` variable), and `--endpoint`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct AuthArgs {
    /// Named cloud in clouds.yaml.
    #[arg(long = "os-cloud", env = "OS_CLOUD", global = true)]
    pub cloud: Option<String>,
    /// Keystone URL (v3).
    #[arg(long = "os-auth-url", env = "OS_AUTH_URL", global = true)]
    pub auth_url: Option<String>,
    /// password, v3applicationcredential or token (default: from what is given).
    #[arg(long = "os-auth-type", env = "OS_AUTH_TYPE", global = true)]
    pub auth_type: Option<String>,
    /// User name.
    #[arg(long = "os-username", env = "OS_USERNAME", global = true)]
    pub username: Option<String>,
    /// User id.
    #[arg(long = "os-user-id", env = "OS_USER_ID", global = true)]
    pub user_id: Option<String>,
    /// Password.
    #[arg(
        long = "os-password",
        env = "OS_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// The user's domain name.
    #[arg(
        long = "os-user-domain-name",
        env = "OS_USER_DOMAIN_NAME",
        global = true
    )]
    pub user_domain_name: Option<String>,
    /// The user's domain id.
    #[arg(long = "os-user-domain-id", env = "OS_USER_DOMAIN_ID", global = true)]
    pub user_domain_id: Option<String>,
    /// Project name.
    #[arg(long = "os-project-name", env = "OS_PROJECT_NAME", global = true)]
    pub project_name: Option<String>,
    /// Project id.
    #[arg(long = "os-project-id", env = "OS_PROJECT_ID", global = true)]
    pub project_id: Option<String>,
    /// The project's domain name.
    #[arg(
        long = "os-project-domain-name",
        env = "OS_PROJECT_DOMAIN_NAME",
        global = true
    )]
    pub project_domain_name: Option<String>,
    /// The project's domain id.
    #[arg(
        long = "os-project-domain-id",
        env = "OS_PROJECT_DOMAIN_ID",
        global = true
    )]
    pub project_domain_id: Option<String>,
    /// Application credential id.
    #[arg(
        long = "os-application-credential-id",
        env = "OS_APPLICATION_CREDENTIAL_ID",
        global = true
    )]
    pub application_credential_id: Option<String>,
    /// Application credential name (with a user).
    #[arg(
        long = "os-application-credential-name",
        env = "OS_APPLICATION_CREDENTIAL_NAME",
        global = true
    )]
    pub application_credential_name: Option<String>,
    /// Application credential secret.
    #[arg(
        long = "os-application-credential-secret",
        env = "OS_APPLICATION_CREDENTIAL_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub application_credential_secret: Option<String>,
    /// A token to use as it is (with `--endpoint`, Keystone is not asked at all).
    #[arg(
        long = "os-token",
        env = "OS_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Region of the endpoint in the catalog.
    #[arg(long = "os-region-name", env = "OS_REGION_NAME", global = true)]
    pub region_name: Option<String>,
    /// Interface of the endpoint in the catalog: public, internal or admin.
    #[arg(long = "os-interface", env = "OS_INTERFACE", global = true)]
    pub interface: Option<String>,
    /// The capsule API's URL, instead of the catalog's `container` endpoint.
    #[arg(long = "endpoint", env = "CAPSULE_ENDPOINT", global = true)]
    pub endpoint: Option<String>,
    /// An OpenID Connect access token, sent as `Authorization: Bearer` (with --endpoint).
    #[arg(
        long = "os-access-token",
        alias = "bearer-token",
        env = "OS_ACCESS_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub access_token: Option<String>,
    /// The issuer's discovery document (`.../.well-known/openid-configuration`), for the
    /// client-credentials grant.
    #[arg(
        long = "os-discovery-endpoint",
        env = "OS_DISCOVERY_ENDPOINT",
        global = true
    )]
    pub discovery_endpoint: Option<String>,
    /// OpenID Connect client id (client-credentials grant).
    #[arg(long = "os-client-id", env = "OS_CLIENT_ID", global = true)]
    pub client_id: Option<String>,
    /// OpenID Connect client secret (client-credentials grant).
    #[arg(
        long = "os-client-secret",
        env = "OS_CLIENT_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub client_secret: Option<String>,
    /// Scope asked for with the client-credentials grant (default `capsule`).
    #[arg(long = "os-openid-scope", env = "OS_OPENID_SCOPE", global = true)]
    pub openid_scope: Option<String>,
    /// Audience (resource) asked for with the client-credentials grant (default: the
    /// endpoint without `/v1`).
    #[arg(long = "os-oidc-audience", env = "OS_OIDC_AUDIENCE", global = true)]
    pub oidc_audience: Option<String>,
}

/// An authenticated session: the token and the capsule API's base URL (ending in `/v1`).
#[derive(Clone, Debug)]
pub struct Session {
    /// The token.
    pub token: String,
    /// The capsule API's base URL, ending in `/v1`.
    pub endpoint: String,
    /// Sent as `Authorization: Bearer` (an OpenID Connect token), not as `X-Auth-Token`.
    pub bearer: bool,
}

/// Where `clouds.yaml`, `secure.yaml` and the token cache are.
#[derive(Clone, Debug, Default)]
pub struct Paths {
    /// Candidate `clouds.yaml` files, in order; the first that exists is read.
    pub clouds: Vec<PathBuf>,
    /// Candidate `secure.yaml` files, in order; the first that exists is merged over it.
    pub secure: Vec<PathBuf>,
    /// The token cache directory; `None` disables reuse.
    pub cache_dir: Option<PathBuf>,
}

impl Paths {
    /// The usual places: `OS_CLIENT_CONFIG_FILE` (and `OS_CLIENT_SECURE_FILE`) first, then
    /// `./`, `$XDG_CONFIG_HOME/openstack/` or `~/.config/openstack/`, `/etc/openstack/`; the
    /// cache in `$XDG_CACHE_HOME/capsule/` or `~/.cache/capsule/` unless
    /// `CAPSULE_NO_TOKEN_CACHE` is set (to anything but `0`).
    pub fn from_env() -> Self {
        let dirs = clouds::search_dirs();
        let file = |var| clouds::non_empty_var(var).map(PathBuf::from);
        let no_cache = clouds::non_empty_var("CAPSULE_NO_TOKEN_CACHE").is_some_and(|v| v != "0");
        Self {
            clouds: clouds::candidates("clouds", file("OS_CLIENT_CONFIG_FILE"), &dirs),
            secure: clouds::candidates("secure", file("OS_CLIENT_SECURE_FILE"), &dirs),
            cache_dir: if no_cache { None } else { cache::default_dir() },
        }
    }
}

/// Authenticates as `args` say (flags and variables first, then `clouds.yaml`), reusing a
/// cached token while it is valid, and finds the endpoint. `debug` prints the Keystone
/// requests and answers to stderr with secrets redacted.
pub fn session(
    args: &AuthArgs,
    http: &reqwest::blocking::Client,
    debug: bool,
) -> Result<Session, CliError> {
    session_with(args, http, debug, &Paths::from_env())
}

/// [`session`] with explicit config files and cache directory.
pub fn session_with(
    args: &AuthArgs,
    http: &reqwest::blocking::Client,
    debug: bool,
    paths: &Paths,
) -> Result<Session, CliError> {
    let args = resolve(args, paths)?;
    let endpoint = args.endpoint.as_deref().map(keystone::api_url);
    if let Some(kind) = oidc::Kind::of(&args) {
        let endpoint = endpoint.ok_or_else(|| {
            CliError::Usage(
                "an OpenID Connect token needs --endpoint (or CAPSULE_ENDPOINT): there is no \
                 Keystone catalog to find the capsule API in"
                    .into(),
            )
        })?;
        let token = oidc::token(kind, &args, http, &endpoint, debug)?;
        return Ok(Session {
            token,
            endpoint,
            bearer: true,
        });
    }
    let method = Method::of(&args)?;
    if let (Method::Token, Some(token), Some(endpoint)) = (method, &args.token, &endpoint) {
        if debug {
            eprintln!("AUTH: the given token with --endpoint {endpoint}; Keystone not asked");
        }
        return Ok(Session {
            token: token.clone(),
            endpoint: endpoint.clone(),
            bearer: false,
        });
    }
    let auth_url = auth_url(&args)?;
    let body = keystone::auth_body(&args, method)?;
    let interface = keystone::interface(&args);
    let cached = paths
        .cache_dir
        .as_deref()
        .map(|d| cache::path(d, &args, method, &auth_url, &interface));
    if let Some(path) = &cached {
        if let Some(entry) = cache::load(path) {
            if let Some(found) = endpoint.clone().or(entry.endpoint) {
                if debug {
                    eprintln!(
                        "AUTH: reusing the token cached in {} (expires {})",
                        path.display(),
                        entry.expires_at.to_rfc3339()
                    );
                }
                return Ok(Session {
                    token: entry.token,
                    endpoint: found,
                    bearer: false,
                });
            }
        }
    }
    let issued = keystone::issue(http, &auth_url, &body, debug)?;
    let found =
        keystone::container_endpoint(&issued.catalog, &interface, args.region_name.as_deref());
    if let (Some(path), Some(expires_at)) = (&cached, issued.expires_at) {
        let entry = cache::Entry {
            token: issued.token.clone(),
            expires_at,
            endpoint: found.as_ref().ok().cloned(),
        };
        if let Err(e) = cache::store(path, &entry) {
            if debug {
                eprintln!("AUTH: cannot cache the token in {}: {e}", path.display());
            }
        }
    }
    Ok(Session {
        token: issued.token,
        endpoint: match endpoint {
            Some(e) => e,
            None => found?,
        },
        bearer: false,
    })
}

/// Forgets the cached token for `args` (the API refused it), so the next [`session`] asks
/// Keystone again. Does nothing if there is none or the credentials are incomplete.
pub fn forget(args: &AuthArgs) {
    forget_with(args, &Paths::from_env());
}

/// [`forget`] with explicit config files and cache directory.
pub fn forget_with(args: &AuthArgs, paths: &Paths) {
    let Some(dir) = paths.cache_dir.as_deref() else {
        return;
    };
    let Ok(args) = resolve(args, paths) else {
        return;
    };
    if oidc::Kind::of(&args).is_some() {
        // Bearer tokens are not cached.
        return;
    }
    let (Ok(method), Ok(auth_url)) = (Method::of(&args), auth_url(&args)) else {
        return;
    };
    let interface = keystone::interface(&args);
    cache::remove(&cache::path(dir, &args, method, &auth_url, &interface));
}

/// The credentials to use: `args` (empty values unset) over the named cloud, if any.
fn resolve(args: &AuthArgs, paths: &Paths) -> Result<AuthArgs, CliError> {
    let flags = without_empty(args);
    match &flags.cloud {
        Some(name) => {
            let cloud = clouds::load_cloud(name, &paths.clouds, &paths.secure)?;
            Ok(clouds::overlay(&flags, without_empty(&cloud)))
        }
        None => Ok(flags),
    }
}

fn auth_url(args: &AuthArgs) -> Result<String, CliError> {
    args.auth_url
        .as_deref()
        .map(keystone::keystone_url)
        .ok_or_else(|| {
            CliError::Usage(
                "no Keystone URL: set --os-auth-url or OS_AUTH_URL, or name a cloud of \
                 clouds.yaml with --os-cloud (or give --endpoint with --os-token)"
                    .into(),
            )
        })
}

/// `args` with every empty or blank value unset (`OS_PROJECT_ID=` means not given).
fn without_empty(args: &AuthArgs) -> AuthArgs {
    let mut a = args.clone();
    for f in [
        &mut a.cloud,
        &mut a.auth_url,
        &mut a.auth_type,
        &mut a.username,
        &mut a.user_id,
        &mut a.password,
        &mut a.user_domain_name,
        &mut a.user_domain_id,
        &mut a.project_name,
        &mut a.project_id,
        &mut a.project_domain_name,
        &mut a.project_domain_id,
        &mut a.application_credential_id,
        &mut a.application_credential_name,
        &mut a.application_credential_secret,
        &mut a.token,
        &mut a.region_name,
        &mut a.interface,
        &mut a.endpoint,
        &mut a.access_token,
        &mut a.discovery_endpoint,
        &mut a.client_id,
        &mut a.client_secret,
        &mut a.openid_scope,
        &mut a.oidc_audience,
    ] {
        if f.as_deref().is_some_and(|v| v.trim().is_empty()) {
            *f = None;
        }
    }
    a
}
