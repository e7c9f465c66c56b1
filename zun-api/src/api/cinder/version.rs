//! Microversions of the Cinder API (3.0 to 3.70): the `OpenStack-API-Version` header as
//! Cinder reads it (400 or 406 for a bad one), and the layer that negotiates it and names it in
//! the answer, with `Vary`.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::CinderError;

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

/// Negotiates the microversion (400 or 406 as Cinder for a bad one) and names it in the
/// answer, with `Vary`.
pub async fn microversion_layer(mut req: Request, next: Next) -> Response {
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
}
