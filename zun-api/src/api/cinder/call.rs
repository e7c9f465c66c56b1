//! The caller of a Cinder API request as its handlers see it: the context, the negotiated
//! microversion, the path parameters and the link prefixes. A project id in the URL must be
//! the token's.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::error::CinderError;
use super::version::Version;
use super::view::Viewer;
use crate::context::RequestContext;
use crate::http::context::base_url;
use crate::state::AppState;

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

    /// `<base>/v3[/<project>]<path>`, as the request named it.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.versioned)
    }

    /// What volume views need.
    pub fn viewer(&self) -> Viewer<'_> {
        Viewer {
            version: self.version,
            is_admin: self.ctx.is_admin,
            versioned: &self.versioned,
            bookmark: &self.bookmark,
        }
    }
}
