//! OIDC bearer-token validation cost: tokens of devstack's real provider (RS256 and ES256,
//! client-credentials grant) validated by zun-api's `OidcAuth`, with its cache of validated
//! tokens off and on. Prints p50/p99 per validation. Run it with `devstack/bench.sh oidc`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use zun_api::auth::{OidcAuth, OidcConfig};

const ROUNDS: usize = 2000;

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| {
        format!("{name} is not set: run devstack/bench.sh (it starts the OIDC provider)")
    })
}

/// A client-credentials token of the client whose variables start with `prefix`.
async fn token(http: &reqwest::Client, prefix: &str) -> Result<String> {
    let issuer = env("ZUN_TEST_OIDC_ISSUER")?;
    let d: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await?
        .json()
        .await?;
    let endpoint = d["token_endpoint"].as_str().context("no token_endpoint")?;
    let resp: Value = http
        .post(endpoint)
        .basic_auth(
            env(&format!("{prefix}CLIENT_ID"))?,
            Some(env(&format!("{prefix}CLIENT_SECRET"))?),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", env("ZUN_TEST_OIDC_AUDIENCE")?.as_str()),
            ("scope", "capsule"),
        ])
        .send()
        .await?
        .json()
        .await?;
    match resp["access_token"].as_str() {
        Some(t) => Ok(t.to_owned()),
        None => bail!("no token for {prefix}: {resp}"),
    }
}

fn config(cache_seconds: u64) -> Result<OidcConfig> {
    let text = format!(
        "leeway_seconds = 30\ntoken_cache_seconds = {cache_seconds}\n\
         [[issuers]]\nissuer = \"{}\"\naudiences = [\"{}\"]\n\
         [issuers.clients.capsule-ci]\nproject = \"bench\"\n\
         [issuers.clients.capsule-es]\nproject = \"bench\"\n",
        env("ZUN_TEST_OIDC_ISSUER")?,
        env("ZUN_TEST_OIDC_AUDIENCE")?
    );
    Ok(toml::from_str(&text)?)
}

/// The `p` quantile of `sorted`, in microseconds.
fn pct(sorted: &[Duration], p: f64) -> f64 {
    bench::percentile_ms(sorted, p) * 1e3
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let http = reqwest::Client::new();
    let tokens = [
        ("RS256", token(&http, "ZUN_TEST_OIDC_").await?),
        ("ES256", token(&http, "ZUN_TEST_OIDC_ES_").await?),
    ];
    println!("OIDC bearer-token validation ({ROUNDS} rounds each, one process):");
    let mut f = bench::Figures::new("oidc");
    for (label, cache) in [("uncached", 0), ("cached", 300)] {
        let oidc = OidcAuth::new(config(cache)?)?;
        for (alg, t) in &tokens {
            // The first validation fetches discovery and the JWKS.
            oidc.validate(t)
                .await
                .map_err(|e| anyhow::anyhow!("{alg} token refused: {e}"))?;
            let mut d = Vec::with_capacity(ROUNDS);
            for _ in 0..ROUNDS {
                let t0 = Instant::now();
                oidc.validate(t)
                    .await
                    .map_err(|e| anyhow::anyhow!("{alg} token refused: {e}"))?;
                d.push(t0.elapsed());
            }
            d.sort();
            println!(
                "{label:<9} {alg}  p50 {:>7.1} µs  p99 {:>7.1} µs",
                pct(&d, 0.5),
                pct(&d, 0.99)
            );
            let key = format!("{label}_{}", alg.to_lowercase());
            f.latency(&key, &format!("OIDC validation, {label}, {alg}"), &d);
        }
    }
    f.save()?;
    Ok(())
}
