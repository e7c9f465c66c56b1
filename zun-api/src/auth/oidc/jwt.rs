//! A JWS compact token taken apart: its header checked (algorithm allow-list first, then
//! `crit` and `typ`), its claims parsed, and its signature verified with a JWKS key through
//! openidconnect's `JsonWebKey::verify_signature`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeyUse, JsonWebTokenType};
use openidconnect::{JsonWebKeyId, JwsSigningAlgorithm};
use serde::Deserialize;
use serde_json::Value;

use super::claims::Claims;
use super::Rejection;

/// The only algorithms ever accepted: asymmetric signatures. Never `none`, never HMAC (we hold
/// no shared secret), never ES512 (openidconnect cannot verify it).
pub(super) const ACCEPTED_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// The algorithm a JOSE `alg` names, if it is one we accept.
pub(super) fn accepted_alg(name: &str) -> Option<CoreJwsSigningAlgorithm> {
    serde_json::from_value::<CoreJwsSigningAlgorithm>(Value::String(name.to_owned()))
        .ok()
        .filter(|a| ACCEPTED_ALGS.contains(a))
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// A parsed, not yet verified, token.
#[derive(Debug)]
pub(super) struct Jwt<'t> {
    /// Its signing algorithm (already on the allow-list).
    pub alg: CoreJwsSigningAlgorithm,
    /// Its key id.
    pub kid: Option<JsonWebKeyId>,
    /// Its claims.
    pub claims: Claims,
    signing_input: &'t str,
    signature: Vec<u8>,
}

fn decode(part: &str) -> Result<Vec<u8>, Rejection> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Rejection::Malformed)
}

/// `typ`, when present, must be RFC 9068's `at+jwt` or plain `JWT`.
fn typ_accepted(typ: &str) -> bool {
    JsonWebTokenType::new(typ.to_owned())
        .normalize()
        .is_ok_and(|t| matches!(t.as_str(), "application/at+jwt" | "application/jwt"))
}

/// Takes `token` apart; the header's algorithm is checked before anything else is looked at.
pub(super) fn parse(token: &str) -> Result<Jwt<'_>, Rejection> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed);
    };
    let header: Header = serde_json::from_slice(&decode(h)?).map_err(|_| Rejection::Malformed)?;
    let alg = accepted_alg(&header.alg).ok_or(Rejection::Algorithm)?;
    if header.crit.is_some() {
        return Err(Rejection::Critical);
    }
    if header.typ.as_deref().is_some_and(|t| !typ_accepted(t)) {
        return Err(Rejection::TokenType);
    }
    let claims: Claims = serde_json::from_slice(&decode(p)?).map_err(|_| Rejection::Malformed)?;
    let signature = decode(s)?;
    if signature.is_empty() {
        return Err(Rejection::Malformed);
    }
    Ok(Jwt {
        alg,
        kid: header.kid.map(JsonWebKeyId::new),
        claims,
        signing_input: &token[..h.len() + 1 + p.len()],
        signature,
    })
}

/// Whether `key` may verify `alg` signatures: a signing key (or one of unstated use) of the
/// algorithm's key type, bound to that algorithm or to none (RFC 7517 §4.2–4.4).
fn compatible(key: &CoreJsonWebKey, alg: &CoreJwsSigningAlgorithm) -> bool {
    key.key_use().is_none_or(|u| u.allows_signature())
        && alg.key_type().as_ref() == Some(key.key_type())
        && match key.signing_alg() {
            JsonWebKeyAlgorithm::Unspecified => true,
            JsonWebKeyAlgorithm::Algorithm(a) => a == alg,
            JsonWebKeyAlgorithm::Unsupported => false,
        }
}

impl Jwt<'_> {
    /// The keys of `keys` that could have signed this token: its `kid`'s (any key when it
    /// has none) that suit its algorithm.
    pub fn candidates<'k, K>(&self, keys: &'k [K]) -> Vec<&'k K>
    where
        K: AsRef<CoreJsonWebKey>,
    {
        keys.iter()
            .filter(|k| {
                let k = k.as_ref();
                (self.kid.is_none() || k.key_id() == self.kid.as_ref()) && compatible(k, &self.alg)
            })
            .collect()
    }

    /// The first of `candidates` whose signature over the token verifies.
    pub fn verify<'k, K>(&self, candidates: &[&'k K]) -> Result<&'k K, Rejection>
    where
        K: AsRef<CoreJsonWebKey>,
    {
        candidates
            .iter()
            .copied()
            .find(|k| {
                k.as_ref()
                    .verify_signature(&self.alg, self.signing_input.as_bytes(), &self.signature)
                    .is_ok()
            })
            .ok_or(Rejection::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    fn token(header: Value, claims: Value, sig: &str) -> String {
        format!("{}.{}.{sig}", b64(&header), b64(&claims))
    }

    #[test]
    fn alg_allow_list() {
        for ok in [
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
        ] {
            assert!(accepted_alg(ok).is_some(), "{ok}");
        }
        for bad in [
            "none", "None", "HS256", "HS384", "HS512", "ES512", "rs256", "", "RSA-OAEP", "A128GCM",
        ] {
            assert!(accepted_alg(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn header_checks_come_first() {
        let claims = serde_json::json!({"iss": "x"});
        // The algorithm is refused even when the rest is garbage.
        let t = format!("{}.!!!.", b64(&serde_json::json!({"alg": "none"})));
        assert_eq!(parse(&t).unwrap_err(), Rejection::Algorithm);
        let t = token(
            serde_json::json!({"alg": "HS256", "typ": "JWT"}),
            claims.clone(),
            "c2ln",
        );
        assert_eq!(parse(&t).unwrap_err(), Rejection::Algorithm);
        let t = token(
            serde_json::json!({"alg": "RS256", "crit": ["b64"]}),
            claims.clone(),
            "c2ln",
        );
        assert_eq!(parse(&t).unwrap_err(), Rejection::Critical);
        let t = token(
            serde_json::json!({"alg": "RS256", "typ": "dpop+jwt"}),
            claims.clone(),
            "c2ln",
        );
        assert_eq!(parse(&t).unwrap_err(), Rejection::TokenType);
        for typ in ["at+jwt", "application/at+JWT", "JWT"] {
            let t = token(
                serde_json::json!({"alg": "ES256", "typ": typ, "kid": "k1"}),
                claims.clone(),
                "c2ln",
            );
            let j = parse(&t).unwrap();
            assert_eq!(j.alg, CoreJwsSigningAlgorithm::EcdsaP256Sha256);
            assert_eq!(j.kid.as_deref().map(String::as_str), Some("k1"));
            assert_eq!(j.claims["iss"], "x");
            assert_eq!(j.signature, b"sig");
        }
    }

    /// A fresh Ed25519 key as openidconnect's signing key (PKCS#8 v1 around 32 random bytes).
    fn ed25519(kid: &str) -> openidconnect::core::CoreEdDsaPrivateSigningKey {
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend(rand::random::<[u8; 32]>());
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der)
        );
        openidconnect::core::CoreEdDsaPrivateSigningKey::from_ed25519_pem(
            &pem,
            Some(JsonWebKeyId::new(kid.into())),
        )
        .unwrap()
    }

    fn signed(
        key: &impl openidconnect::PrivateSigningKey<VerificationKey = CoreJsonWebKey>,
        header: Value,
    ) -> String {
        let input = format!("{}.{}", b64(&header), b64(&serde_json::json!({"iss": "x"})));
        let sig = key
            .sign(&CoreJwsSigningAlgorithm::EdDsa, input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    #[test]
    fn keys_are_chosen_by_kid_type_use_and_alg_then_verified() {
        use openidconnect::PrivateSigningKey;
        use std::sync::Arc;
        let (k1, k2) = (ed25519("k1"), ed25519("k2"));
        let jwk = |k: &openidconnect::core::CoreEdDsaPrivateSigningKey, extra: Value| {
            let mut v = serde_json::to_value(k.as_verification_key()).unwrap();
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            Arc::new(serde_json::from_value::<CoreJsonWebKey>(v).unwrap())
        };
        let keys = vec![
            jwk(&k1, serde_json::json!({})),
            jwk(&k2, serde_json::json!({"alg": "EdDSA"})),
            // The same key for encryption, or bound to another algorithm: never used.
            jwk(&k1, serde_json::json!({"kid": "enc", "use": "enc"})),
            jwk(&k1, serde_json::json!({"kid": "es", "alg": "ES256"})),
        ];
        let t1 = signed(&k1, serde_json::json!({"alg": "EdDSA", "kid": "k1"}));
        let j = parse(&t1).unwrap();
        let c = j.candidates(&keys);
        assert_eq!(c.len(), 1);
        assert!(Arc::ptr_eq(j.verify(&c).unwrap(), &keys[0]));
        // Without a kid every suitable key is tried; the right one verifies.
        let t2 = signed(&k2, serde_json::json!({"alg": "EdDSA"}));
        let j = parse(&t2).unwrap();
        assert_eq!(j.candidates(&keys).len(), 2);
        assert!(Arc::ptr_eq(
            j.verify(&j.candidates(&keys)).unwrap(),
            &keys[1]
        ));
        // k2's signature under k1's kid: the candidate does not verify it.
        let forged = signed(&k2, serde_json::json!({"alg": "EdDSA", "kid": "k1"}));
        let j = parse(&forged).unwrap();
        assert_eq!(
            j.verify(&j.candidates(&keys)).unwrap_err(),
            Rejection::Signature
        );
        for kid in ["enc", "es", "nope"] {
            let t = signed(&k1, serde_json::json!({"alg": "EdDSA", "kid": kid}));
            assert!(parse(&t).unwrap().candidates(&keys).is_empty(), "{kid}");
        }
        // A signature over other claims does not verify.
        let (h, _) = t1.split_once('.').unwrap();
        let sig = t1.rsplit_once('.').unwrap().1;
        let tampered = format!("{h}.{}.{sig}", b64(&serde_json::json!({"iss": "y"})));
        let j = parse(&tampered).unwrap();
        assert_eq!(
            j.verify(&j.candidates(&keys)).unwrap_err(),
            Rejection::Signature
        );
    }

    #[test]
    fn malformed_tokens() {
        let h = b64(&serde_json::json!({"alg": "RS256"}));
        let c = b64(&serde_json::json!({"iss": "x"}));
        for t in [
            String::new(),
            "garbage".into(),
            "a.b".into(),
            format!("{h}.{c}"),
            format!("{h}.{c}."),
            format!("{h}.{c}.c2ln.extra.parts"),
            format!("{h}.!!.c2ln"),
            format!(
                "{h}.{}.c2ln",
                b64(&serde_json::json!(["not", "an", "object"]))
            ),
            format!("{h}.{c}.c2ln="),
            format!("{}.{c}.c2ln", URL_SAFE_NO_PAD.encode("{not json")),
        ] {
            assert_eq!(parse(&t).unwrap_err(), Rejection::Malformed, "{t}");
        }
    }
}
