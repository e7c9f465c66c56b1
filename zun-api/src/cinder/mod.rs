//! The block-storage API: the subset of Cinder's v3 API that volumes need (volumes and their
//! metadata, limits, quota sets, the one volume type, availability zones), served on its own
//! listener so the unchanged `openstack volume ...` commands work on a cloud without Cinder.
//! Same Keystone authentication as the capsule API; a project sees and changes its own
//! volumes, an admin any (and lists all with `?all_tenants=1`). Microversions 3.0 to 3.70;
//! every route also answers without the project id in the URL, as Cinder's does.

mod error;
mod view;
mod volumes;

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, RawPathParams, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use capsule_types::rpc::COMPUTE_BINARY;
use db::volumes::VolumeScope;
use serde_json::{json, Value};

pub use error::CinderError;
pub use view::{DEFAULT_TYPE_ID, DEFAULT_TYPE_NAME};

use crate::context::RequestContext;
use crate::http::auth::auth_layer;
use crate::http::body::{json_bytes, JsonBodyError};
use crate::http::context::{base_url, request_id_layer};
use crate::http::path::strip_trailing_slashes;
use crate::http::query::{last, pairs, parse_bool_strict};
use crate::state::AppState;

/// A microversion of the v3 API: the minor number (the major is always 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u16);

/// The microversion header, in requests and answers.
pub const VERSION_HEADER: &str = "OpenStack-API-Version";

impl Version {
    /// The oldest microversion served, and the one without a header: 3.0.
    pub const MIN: Self = Version(0);
    /// The newest microversion served: 3.70.
    pub const MAX: Self = Version(70);

    /// Whether this is `3.<minor>` or later.
    pub fn at_least(self, minor: u16) -> bool {
        self.0 >= minor
    }

    /// The version an `OpenStack-API-Version` header asks for, as Cinder reads it: the
    /// `volume` entry of a comma-separated list; `latest` is the newest; none, the oldest.
    pub fn from_header(value: Option<&str>) -> Result<Self, CinderError> {
        let Some(value) = value else {
            return Ok(Self::MIN);
        };
        let Some(asked) = value.split(',').find_map(|entry| {
            let mut words = entry.split_whitespace();
            (words.next() == Some("volume")).then(|| words.next().unwrap_or("").to_owned())
        }) else {
            return Ok(Self::MIN);
        };
        if asked.eq_ignore_ascii_case("latest") {
            return Ok(Self::MAX);
        }
        let invalid = || {
            CinderError::bad_request(format!(
                "API Version String {asked} is of invalid format. Must be of format \
                 MajorNum.MinorNum."
            ))
        };
        let (major, minor) = asked.split_once('.').ok_or_else(invalid)?;
        let number = |s: &str| {
            let canonical = s == "0" || (!s.starts_with('0') && !s.is_empty());
            s.bytes().all(|b| b.is_ascii_digit()) && canonical
        };
        if !number(major) || !number(minor) || major == "0" {
            return Err(invalid());
        }
        let major: u32 = major.parse().map_err(|_| invalid())?;
        let minor: u32 = minor.parse().map_err(|_| invalid())?;
        if major != 3 || minor > u32::from(Self::MAX.0) {
            return Err(CinderError::new(
                StatusCode::NOT_ACCEPTABLE,
                format!(
                    "Version {major}.{minor} is not supported by the API. Minimum is {} and \
                     maximum is {}.",
                    Self::MIN,
                    Self::MAX
                ),
            ));
        }
        Ok(Version(u16::try_from(minor).unwrap_or(Self::MAX.0)))
    }
}

impl Default for Version {
    fn default() -> Self {
        Self::MIN
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "3.{}", self.0)
    }
}

/// Adds `route` to `r` both under `/v3/{project_id}` and under `/v3` (Cinder accepts URLs
/// without the project id; 3.67 only announced it).
fn scoped(r: Router<AppState>, route: &str, method: MethodRouter<AppState>) -> Router<AppState> {
    r.route(&format!("/v3/{{project_id}}{route}"), method.clone())
        .route(&format!("/v3{route}"), method)
}

/// The block-storage API's routes, with authentication, request ids and microversions.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new()
        .route("/", get(versions))
        .route("/v3", get(versions_v3))
        .route("/v3/{project_id}", get(versions_in_project));
    let routes: [(&str, MethodRouter<AppState>); 13] = [
        ("/volumes", get(volumes::list).post(volumes::create)),
        ("/volumes/detail", get(volumes::list_detail)),
        ("/volumes/summary", get(volumes::summary)),
        (
            "/volumes/{id}",
            get(volumes::show)
                .put(volumes::update)
                .delete(volumes::delete),
        ),
        ("/volumes/{id}/action", post(volumes::action)),
        (
            "/volumes/{id}/metadata",
            get(volumes::metadata_show)
                .post(volumes::metadata_merge)
                .put(volumes::metadata_replace),
        ),
        (
            "/volumes/{id}/metadata/{key}",
            get(volumes::metadata_key_show)
                .put(volumes::metadata_key_set)
                .delete(volumes::metadata_key_delete),
        ),
        ("/limits", get(limits)),
        (
            "/os-quota-sets/{target}",
            get(quota_show).put(quota_change).delete(quota_change),
        ),
        ("/os-quota-sets/{target}/defaults", get(quota_defaults)),
        ("/types", get(types)),
        ("/types/{type_id}", get(type_show)),
        ("/os-availability-zone", get(zones)),
    ];
    for (route, method) in routes {
        r = scoped(r, route, method);
    }
    let api = r
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn(microversion_layer))
        .layer(from_fn_with_state(state.clone(), auth))
        .with_state(state);
    // Layers of a router run after its routing: the slash is stripped in front of it.
    Router::new()
        .fallback_service(api)
        .layer(from_fn(strip_trailing_slash))
        .layer(from_fn(request_id_layer))
}

/// Authentication, except for the version documents (`/`, `/v3`), which clients read
/// before they have a token.
async fn auth(state: State<AppState>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/v3" {
        return next.run(req).await;
    }
    auth_layer(state, req, next).await
}

/// `/v3/` and `/v3/<project>/volumes/` mean the same as without the slash (and `//`, `/`).
async fn strip_trailing_slash(mut req: Request, next: Next) -> Response {
    strip_trailing_slashes(&mut req, true);
    next.run(req).await
}

/// Negotiates the microversion (400 or 406 as Cinder for a bad one) and names it in the
/// answer, with `Vary`.
async fn microversion_layer(mut req: Request, next: Next) -> Response {
    let asked = req
        .headers()
        .get(VERSION_HEADER)
        .map(|v| v.to_str().unwrap_or("volume ?"));
    let version = match Version::from_header(asked) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(version);
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&format!("volume {version}")) {
        resp.headers_mut().insert(VERSION_HEADER, v);
        resp.headers_mut()
            .append(header::VARY, HeaderValue::from_static(VERSION_HEADER));
    }
    resp
}

/// The v3 version document; `base` is the service's base URL.
fn version_doc(base: &str) -> Value {
    json!({
        "id": "v3.0",
        "status": "CURRENT",
        "version": Version::MAX.to_string(),
        "min_version": Version::MIN.to_string(),
        "updated": "2023-08-31T00:00:00Z",
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            {"rel": "self", "href": format!("{base}/v3/")},
        ],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.volume+json;version=3",
        }],
    })
}

/// `GET /`: the versions, `300 Multiple Choices` as Cinder answers.
async fn versions(headers: HeaderMap, State(state): State<AppState>) -> Response {
    let base = base_url(state.config.volume_api.public_url.as_deref(), &headers);
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({ "versions": [version_doc(&base)] })),
    )
        .into_response()
}

/// `GET /v3`: the v3 version, in a `versions` list as Cinder answers.
async fn versions_v3(headers: HeaderMap, State(state): State<AppState>) -> Json<Value> {
    let base = base_url(state.config.volume_api.public_url.as_deref(), &headers);
    Json(json!({ "versions": [version_doc(&base)] }))
}

/// `GET /v3/{project_id}`: the same, for clients whose endpoint is the catalog's URL with the
/// project id (an endpoint override) and that discover the version there.
async fn versions_in_project(
    call: Call,
    headers: HeaderMap,
    state: State<AppState>,
) -> Json<Value> {
    let _ = call;
    versions_v3(headers, state).await
}

async fn not_found() -> CinderError {
    CinderError::not_found(
        "The resource could not be found. (This block-storage service offers volumes and their \
         metadata, limits, quota sets, volume types and availability zones; no snapshots, \
         backups, groups, transfers or attachments.)",
    )
}

async fn method_not_allowed() -> CinderError {
    CinderError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method is not allowed for the requested URL.",
    )
}

/// A request as the handlers see it: the caller, the microversion, the path parameters and
/// the link prefixes. A project id in the URL must be the token's (Cinder: "Malformed request
/// url" otherwise, for admins too).
#[derive(Debug)]
pub struct Call {
    /// The caller.
    pub ctx: RequestContext,
    /// The negotiated microversion.
    pub version: Version,
    /// The path parameters (`id`, `key`, `target`, `type_id`).
    params: Vec<(String, String)>,
    /// `<base>/v3[/<project>]`.
    versioned: String,
    /// `<base>[/<project>]`.
    bookmark: String,
}

impl FromRequestParts<AppState> for Call {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let ctx = RequestContext::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let version = parts
            .extensions
            .get::<Version>()
            .copied()
            .unwrap_or_default();
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let mut params: Vec<(String, String)> = raw
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let url_project = params
            .iter()
            .position(|(k, _)| k == "project_id")
            .map(|i| params.remove(i).1);
        if let Some(p) = &url_project {
            if ctx.identity.project_id.as_deref() != Some(p.as_str()) {
                return Err(CinderError::bad_request("Malformed request url").into_response());
            }
        }
        let base = base_url(
            state.config.volume_api.public_url.as_deref(),
            &parts.headers,
        );
        let project = url_project.map(|p| format!("/{p}")).unwrap_or_default();
        Ok(Self {
            ctx,
            version,
            params,
            versioned: format!("{base}/v3{project}"),
            bookmark: format!("{base}{project}"),
        })
    }
}

impl Call {
    /// A path parameter (empty if the route has none of that name).
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The token's project; a token without one may not do `action`.
    pub fn project(&self, action: &str) -> Result<&str, CinderError> {
        self.ctx
            .identity
            .project_id
            .as_deref()
            .ok_or_else(|| CinderError::forbidden(action))
    }

    /// The volumes the caller may see or change by id: an admin any, anyone else their
    /// project's.
    pub fn scope(&self, action: &str) -> Result<VolumeScope<'_>, CinderError> {
        if self.ctx.is_admin {
            return Ok(VolumeScope::All);
        }
        self.project(action).map(VolumeScope::Project)
    }

    /// Changes need the `member` role on a project, or admin; `reader`s only read (Cinder's
    /// `project_member_api`).
    pub fn may_change(&self, action: &str) -> Result<(), CinderError> {
        let member = self.ctx.identity.roles.iter().any(|r| r == "member");
        if self.ctx.is_admin || (member && self.ctx.identity.project_id.is_some()) {
            Ok(())
        } else {
            Err(CinderError::forbidden(action))
        }
    }

    /// `<base>/v3[/<project>]<path>`, as the request named it.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.versioned)
    }

    /// What volume views need.
    pub fn viewer(&self) -> view::Viewer<'_> {
        view::Viewer {
            version: self.version,
            is_admin: self.ctx.is_admin,
            versioned: &self.versioned,
            bookmark: &self.bookmark,
        }
    }
}

/// A JSON request body, or Cinder's 400/413/415.
fn json_body(headers: &HeaderMap, body: &Bytes, limit: usize) -> Result<Value, CinderError> {
    let accepted = |ct: &str| {
        ["application/json", "application/vnd.openstack.volume+json"]
            .iter()
            .any(|t| ct.starts_with(t))
    };
    json_bytes(headers, body, limit, accepted).map_err(|e| match e {
        JsonBodyError::TooLarge => {
            CinderError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request is too large.")
        }
        JsonBodyError::UnsupportedType(_) => CinderError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Content-Type",
        ),
        JsonBodyError::Malformed(_) => CinderError::bad_request("Malformed request body"),
    })
}

/// A boolean query parameter as Cinder reads it (`strutils.bool_from_string`, strict).
fn parse_bool(name: &str, v: &str) -> Result<bool, CinderError> {
    parse_bool_strict(v.trim()).ok_or_else(|| {
        CinderError::bad_request(format!(
            "Invalid value '{v}' for {name}: it must be a boolean."
        ))
    })
}

/// `GET /limits`: the caller's project's (an admin may name another with `?project_id=` from
/// 3.39; anyone else's `project_id` is ignored, as Cinder does).
async fn limits(
    State(state): State<AppState>,
    call: Call,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, CinderError> {
    let own = call.project("limits_extension:used_limits")?;
    let pairs = pairs(query.as_deref());
    let asked = ["project_id", "tenant_id"]
        .iter()
        .find_map(|k| last(&pairs, k));
    let project = match asked {
        Some(p) if call.ctx.is_admin && call.version.at_least(39) => p,
        _ => own,
    };
    let (gib, count) = state.db.volume_usage(project).await?;
    Ok(Json(view::limits(state.config.volume.limits(), gib, count)))
}

/// `project` if the caller may see its quotas (its own, or any for an admin).
fn quota_target(call: &Call) -> Result<String, CinderError> {
    const SHOW: &str = "volume_extension:quotas:show";
    let target = call.param("target");
    if call.ctx.is_admin || call.ctx.identity.project_id.as_deref() == Some(target) {
        Ok(target.to_owned())
    } else {
        Err(CinderError::forbidden(SHOW))
    }
}

/// `GET /os-quota-sets/{project}[?usage=true]`: the configured quotas, with usage if asked.
async fn quota_show(
    State(state): State<AppState>,
    call: Call,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, CinderError> {
    let target = quota_target(&call)?;
    let pairs = pairs(query.as_deref());
    let usage = match last(&pairs, "usage") {
        Some(v) => parse_bool("usage", v)?,
        None => false,
    };
    let used = if usage {
        Some(state.db.volume_usage(&target).await?)
    } else {
        None
    };
    Ok(Json(view::quota_set(
        &target,
        state.config.volume.limits(),
        used,
    )))
}

/// `GET /os-quota-sets/{project}/defaults`: the same quotas (every project has the
/// configured ones).
async fn quota_defaults(
    State(state): State<AppState>,
    call: Call,
) -> Result<Json<Value>, CinderError> {
    let target = quota_target(&call)?;
    Ok(Json(view::quota_set(
        &target,
        state.config.volume.limits(),
        None,
    )))
}

/// `PUT` or `DELETE /os-quota-sets/{project}`: quotas come from the configuration.
async fn quota_change(call: Call) -> CinderError {
    if !call.ctx.is_admin {
        return CinderError::forbidden("volume_extension:quotas:update");
    }
    CinderError::bad_request(
        "Quotas of this service are set in zun-api's configuration ([volume] project_volumes, \
         project_gigabytes, max_size_gib) and apply to every project; they cannot be changed \
         through the API.",
    )
}

/// `GET /types`: the one volume type.
async fn types(_call: Call) -> Json<Value> {
    Json(json!({ "volume_types": [view::default_type()] }))
}

/// `GET /types/{id}`: the one volume type, by id, name or `default`.
async fn type_show(call: Call) -> Result<Json<Value>, CinderError> {
    let id = call.param("type_id");
    if [DEFAULT_TYPE_ID, DEFAULT_TYPE_NAME, "default"].contains(&id) {
        Ok(Json(json!({ "volume_type": view::default_type() })))
    } else {
        Err(CinderError::not_found(format!(
            "Volume type {id} could not be found."
        )))
    }
}

/// The zones of the compute hosts (the default zone when a host names none), each available
/// when one of its hosts is up and enabled. With no host at all, the default zone, not
/// available.
async fn zone_states(state: &AppState) -> Result<Vec<(String, bool)>, CinderError> {
    let cfg = &state.config;
    let down_after = std::time::Duration::from_secs(cfg.conductor.service_down_seconds);
    let mut zones: Vec<(String, bool)> = Vec::new();
    for svc in state.db.list_services().await? {
        if svc.binary != COMPUTE_BINARY {
            continue;
        }
        let zone = svc
            .availability_zone
            .clone()
            .filter(|z| !z.is_empty())
            .unwrap_or_else(|| cfg.scheduler.default_availability_zone.clone());
        let up = !svc.disabled && crate::compute::placement::service_is_up(&svc, down_after);
        match zones.iter_mut().find(|(z, _)| *z == zone) {
            Some((_, avail)) => *avail |= up,
            None => zones.push((zone, up)),
        }
    }
    if zones.is_empty() {
        zones.push((cfg.scheduler.default_availability_zone.clone(), false));
    }
    Ok(zones)
}

/// The names of the zones a volume may ask for.
async fn zone_names(state: &AppState) -> Result<BTreeSet<String>, CinderError> {
    let mut names: BTreeSet<String> = zone_states(state)
        .await?
        .into_iter()
        .map(|(z, _)| z)
        .collect();
    names.insert(state.config.scheduler.default_availability_zone.clone());
    Ok(names)
}

/// `GET /os-availability-zone`.
async fn zones(State(state): State<AppState>, _call: Call) -> Result<Json<Value>, CinderError> {
    let info: Vec<Value> = zone_states(&state)
        .await?
        .into_iter()
        .map(|(name, available)| json!({"zoneName": name, "zoneState": {"available": available}}))
        .collect();
    Ok(Json(json!({ "availabilityZoneInfo": info })))
}

/// Serves the block-storage API on `listener` until `shutdown` resolves.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microversion_header_as_cinder_reads_it() {
        assert_eq!(Version::from_header(None).unwrap(), Version(0));
        assert_eq!(
            Version::from_header(Some("volume 3.42")).unwrap(),
            Version(42)
        );
        assert_eq!(
            Version::from_header(Some("compute 2.1, volume latest")).unwrap(),
            Version::MAX
        );
        assert_eq!(
            Version::from_header(Some("compute 2.1")).unwrap(),
            Version::MIN
        );
        for bad in [
            "volume 3",
            "volume 3.01",
            "volume x.y",
            "volume",
            "volume 03.1",
        ] {
            let e = Version::from_header(Some(bad)).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
        for high in ["volume 3.71", "volume 2.0", "volume 4.0"] {
            let e = Version::from_header(Some(high)).unwrap_err();
            assert_eq!(e.status(), StatusCode::NOT_ACCEPTABLE, "{high}");
            assert!(e.message().contains("maximum is 3.70"), "{}", e.message());
        }
        assert_eq!(Version(7).to_string(), "3.7");
    }

    #[test]
    fn booleans_as_cinder_reads_them() {
        assert!(parse_bool("x", "True").unwrap());
        assert!(parse_bool("x", "1").unwrap());
        assert!(!parse_bool("x", "off").unwrap());
        assert_eq!(
            parse_bool("all_tenants", "maybe").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }
}
