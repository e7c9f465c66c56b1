//! The capsule API over HTTP: the token, the microversion header, Zun's error bodies turned
//! into [`CliError::Api`], and `--debug` traces with the token redacted.

use reqwest::blocking::{Client as Http, RequestBuilder};
use reqwest::Method;
use serde_json::Value;

use crate::auth::Session;
use crate::CliError;

/// The microversion sent when none is asked for: the newest the API has.
pub const DEFAULT_MICROVERSION: &str = "1.40";

/// A client of one capsule API.
pub struct Client {
    http: Http,
    session: Session,
    microversion: String,
    debug: bool,
}

impl Client {
    /// A client for `session`, sending `microversion` (`container X.Y`).
    pub fn new(http: Http, session: Session, microversion: &str, debug: bool) -> Self {
        Self {
            http,
            session,
            microversion: microversion.to_owned(),
            debug,
        }
    }

    /// `GET path` (relative to the `/v1` base, or an absolute `next` link); the JSON answer.
    pub fn get(&self, path: &str) -> Result<Value, CliError> {
        self.send(Method::GET, path, None).map(|(_, v)| v)
    }

    /// `POST path` with `body`; the JSON answer.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.send(Method::POST, path, Some(body)).map(|(_, v)| v)
    }

    /// `POST path` without a body (Zun's container actions); the JSON answer (`null` when
    /// empty).
    pub fn post_empty(&self, path: &str) -> Result<Value, CliError> {
        self.send(Method::POST, path, None).map(|(_, v)| v)
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Result<(), CliError> {
        self.send(Method::DELETE, path, None).map(|_| ())
    }

    /// `GET path` whose answer is text (container logs).
    pub fn get_text(&self, path: &str) -> Result<String, CliError> {
        let resp = self.request(Method::GET, path, None)?;
        let (status, text) = self.read(resp)?;
        if status >= 400 {
            return Err(api_error(status, &text, None));
        }
        // Zun's logs route answers a JSON string.
        Ok(serde_json::from_str::<String>(&text).unwrap_or(text))
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.session.endpoint)
        }
    }

    fn builder(&self, method: Method, path: &str) -> RequestBuilder {
        let rb = self.http.request(method, self.url(path));
        let rb = if self.session.bearer {
            rb.bearer_auth(&self.session.token)
        } else {
            rb.header("X-Auth-Token", &self.session.token)
        };
        rb.header(
            "OpenStack-API-Version",
            format!("container {}", self.microversion),
        )
        .header("Accept", "application/json")
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::blocking::Response, CliError> {
        if self.debug {
            eprintln!(
                "REQ: {method} {} -H '{}: {{SHA256}}{}' -H 'OpenStack-API-Version: container {}'{}",
                self.url(path),
                if self.session.bearer {
                    "Authorization: Bearer"
                } else {
                    "X-Auth-Token"
                },
                redacted(&self.session.token),
                self.microversion,
                body.map(|b| format!(" -d '{b}'")).unwrap_or_default()
            );
        }
        let mut rb = self.builder(method, path);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        rb.send()
            .map_err(|e| CliError::Failed(format!("cannot reach {}: {e}", self.url(path))))
    }

    fn read(&self, resp: reqwest::blocking::Response) -> Result<(u16, String), CliError> {
        let status = resp.status().as_u16();
        let rid = resp
            .headers()
            .get("x-openstack-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp
            .text()
            .map_err(|e| CliError::Failed(format!("reading the answer: {e}")))?;
        if self.debug {
            eprintln!(
                "RESP: [{status}] request-id {} {}",
                rid.as_deref().unwrap_or("-"),
                text
            );
        }
        if status >= 400 {
            return Err(api_error(status, &text, rid));
        }
        Ok((status, text))
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), CliError> {
        let resp = self.request(method, path, body)?;
        let (status, text) = self.read(resp)?;
        if text.trim().is_empty() {
            return Ok((status, Value::Null));
        }
        let v = serde_json::from_str(&text).map_err(|e| {
            CliError::Failed(format!(
                "the API answered {status} with non-JSON ({e}): {text}"
            ))
        })?;
        Ok((status, v))
    }
}

/// A SHA-256 of the token, as the openstack CLI shows it in `--debug`.
fn redacted(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// The API's error message: Zun's `{"errors": [{"detail": ...}]}`, keystonemiddleware's
/// `{"error": {"message": ...}}`, or the body itself.
fn api_error(status: u16, body: &str, request_id: Option<String>) -> CliError {
    let v: Option<Value> = serde_json::from_str(body).ok();
    let message = v
        .as_ref()
        .and_then(|v| {
            v["errors"][0]["detail"]
                .as_str()
                .or_else(|| v["errors"][0]["title"].as_str())
                .or_else(|| v["error"]["message"].as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| body.trim().to_owned());
    CliError::Api {
        status,
        message,
        request_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_zun_and_keystonemiddleware() {
        let zun = r#"{"errors":[{"request_id":"req-1","code":"404","status":404,"title":"Not Found","detail":"Capsule x could not be found.","links":[]}]}"#;
        assert!(matches!(
            api_error(404, zun, None),
            CliError::Api { status: 404, ref message, .. } if message == "Capsule x could not be found."
        ));
        let ks = r#"{"error":{"code":401,"title":"Unauthorized","message":"The request you have made requires authentication."}}"#;
        assert!(matches!(
            api_error(401, ks, None),
            CliError::Api { status: 401, ref message, .. } if message.starts_with("The request you have made")
        ));
        assert!(matches!(
            api_error(502, "Bad Gateway\n", None),
            CliError::Api { status: 502, ref message, .. } if message == "Bad Gateway"
        ));
    }
}
