//! Zun API microversions: the `OpenStack-API-Version: container X.Y` header, its range and
//! negotiation, shared by the server (which negotiates) and clients (which request).

use std::fmt;
use std::str::FromStr;

/// The service-type token Zun expects in the header.
pub const SERVICE_TYPE: &str = "container";
/// The service type openstacksdk registers for Zun; accepted as an alias.
pub const SERVICE_TYPE_ALIAS: &str = "application-container";
/// The standard microversion request/response header.
pub const HEADER: &str = "OpenStack-API-Version";
/// An older, Zun-specific header some clients send; honoured when the standard one is absent.
pub const LEGACY_HEADER: &str = "X-OpenStack-Zun-API-Version";

/// An API microversion `major.minor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// Major version (always 1).
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

impl ApiVersion {
    /// Oldest version served (the default when no header is sent, as in Zun).
    pub const MIN: ApiVersion = ApiVersion::new(1, 1);
    /// Newest version served.
    pub const MAX: ApiVersion = ApiVersion::new(1, 40);
    /// First version with the current capsule view (`name`, `labels`, restart policy object).
    pub const CAPSULE_CURRENT_VIEW: ApiVersion = ApiVersion::new(1, 32);

    /// A version.
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for ApiVersion {
    type Err = VersionError;

    /// Parses `X.Y` (two non-negative integers).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || VersionError::InvalidValue;
        let (maj, min) = s.split_once('.').ok_or_else(invalid)?;
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(maj) || !digits(min) {
            return Err(invalid());
        }
        Ok(Self::new(
            maj.parse().map_err(|_| invalid())?,
            min.parse().map_err(|_| invalid())?,
        ))
    }
}

/// Why a requested microversion is refused (all are HTTP 406 in Zun).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The header does not name our service type.
    #[error("Invalid service type for OpenStack-API-Version header")]
    InvalidServiceType,
    /// The version is not `X.Y`.
    #[error("Invalid value for OpenStack-API-Version header")]
    InvalidValue,
    /// Major version other than 1.
    #[error("Mutually exclusive versions requested. Version {0} requested but not supported by this service. The supported version range is: [container {min}, container {max}].", min = ApiVersion::MIN, max = ApiVersion::MAX)]
    MajorUnsupported(ApiVersion),
    /// Minor version outside the range.
    #[error("Version {0} was requested but the minor version is not supported by this service. The supported version range is: [container {min}, container {max}].", min = ApiVersion::MIN, max = ApiVersion::MAX)]
    OutOfRange(ApiVersion),
}

/// Negotiates the version of one request from its headers.
///
/// `standard` is the value of `OpenStack-API-Version` (possibly a comma-separated list of
/// `service version` pairs), `legacy` the value of `X-OpenStack-Zun-API-Version`. No header
/// means [`ApiVersion::MIN`], as in Zun; `latest` means [`ApiVersion::MAX`].
pub fn negotiate(standard: Option<&str>, legacy: Option<&str>) -> Result<ApiVersion, VersionError> {
    let requested = match (standard, legacy) {
        (Some(h), _) => parse_standard(h)?,
        (None, Some(l)) => parse_version_token(l.trim())?,
        (None, None) => return Ok(ApiVersion::MIN),
    };
    check_range(requested)
}

fn parse_standard(header: &str) -> Result<ApiVersion, VersionError> {
    // Each comma-separated entry is `<service> <version>`; we use ours. Zun accepts exactly one
    // entry and refuses any other service token with 406; a list naming other services only is
    // refused the same way.
    for entry in header.split(',') {
        let mut parts = entry.split_whitespace();
        let (Some(service), Some(version), None) = (parts.next(), parts.next(), parts.next())
        else {
            if header.contains(',') {
                continue;
            }
            return Err(VersionError::InvalidServiceType);
        };
        if service.eq_ignore_ascii_case(SERVICE_TYPE)
            || service.eq_ignore_ascii_case(SERVICE_TYPE_ALIAS)
        {
            return parse_version_token(version);
        }
    }
    Err(VersionError::InvalidServiceType)
}

fn parse_version_token(v: &str) -> Result<ApiVersion, VersionError> {
    if v.eq_ignore_ascii_case("latest") {
        return Ok(ApiVersion::MAX);
    }
    v.parse()
}

fn check_range(v: ApiVersion) -> Result<ApiVersion, VersionError> {
    if v.major != ApiVersion::MIN.major {
        return Err(VersionError::MajorUnsupported(v));
    }
    if v < ApiVersion::MIN || v > ApiVersion::MAX {
        return Err(VersionError::OutOfRange(v));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_minimum() {
        assert_eq!(negotiate(None, None), Ok(ApiVersion::MIN));
    }

    #[test]
    fn standard_header_forms() {
        let v = |s| negotiate(Some(s), None);
        assert_eq!(v("container 1.32"), Ok(ApiVersion::new(1, 32)));
        assert_eq!(v("container latest"), Ok(ApiVersion::MAX));
        assert_eq!(v("  container   1.40 "), Ok(ApiVersion::MAX));
        assert_eq!(v("application-container 1.5"), Ok(ApiVersion::new(1, 5)));
        assert_eq!(v("compute 2.1, container 1.3"), Ok(ApiVersion::new(1, 3)));
        assert_eq!(v("compute 2.1"), Err(VersionError::InvalidServiceType));
        assert_eq!(v("1.3"), Err(VersionError::InvalidServiceType));
        assert_eq!(v("container 1.3 x"), Err(VersionError::InvalidServiceType));
        assert_eq!(v("container 1"), Err(VersionError::InvalidValue));
        assert_eq!(v("container 1.x"), Err(VersionError::InvalidValue));
        assert_eq!(v("container -1.2"), Err(VersionError::InvalidValue));
        assert_eq!(
            v("container 2.0"),
            Err(VersionError::MajorUnsupported(ApiVersion::new(2, 0)))
        );
        assert_eq!(
            v("container 1.41"),
            Err(VersionError::OutOfRange(ApiVersion::new(1, 41)))
        );
        assert_eq!(
            v("container 1.0"),
            Err(VersionError::OutOfRange(ApiVersion::new(1, 0)))
        );
    }

    #[test]
    fn legacy_header_only_when_standard_absent() {
        assert_eq!(negotiate(None, Some("1.20")), Ok(ApiVersion::new(1, 20)));
        assert_eq!(
            negotiate(Some("container 1.2"), Some("1.20")),
            Ok(ApiVersion::new(1, 2))
        );
    }

    #[test]
    fn messages_match_zun() {
        assert_eq!(
            VersionError::OutOfRange(ApiVersion::new(1, 41)).to_string(),
            "Version 1.41 was requested but the minor version is not supported by this service. \
             The supported version range is: [container 1.1, container 1.40]."
        );
    }

    #[test]
    fn ordering_is_numeric() {
        assert!(ApiVersion::new(1, 9) < ApiVersion::new(1, 10));
        assert_eq!(ApiVersion::new(1, 9).to_string(), "1.9");
    }
}
