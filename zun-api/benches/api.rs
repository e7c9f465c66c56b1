//! API benchmark: a real `zun-api` process with real Keystone auth (the token cached after its
//! first use) on a fresh SQLite database. Prints create latency of the API alone (no compute
//! host: the capsule is stored and answered 202) and `GET /v1/capsules` throughput with 1,000
//! capsules, as a full page and as pages of 50; figures to `bench/out/api.json`. Run it with
//! `devstack/bench.sh api`.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bench::percentile_ms as pct;
use serde_json::{json, Value};
use test_support::{free_port, TempDir};

const CAPSULES: usize = 1000;
const CONCURRENCY: usize = 32;
const RUN: Duration = Duration::from_secs(8);

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| {
        format!("{name} is not set: run devstack/bench.sh (it starts Keystone and exports it)")
    })
}

struct Server {
    child: Child,
    /// Removed after the server is killed (fields drop after `drop`).
    _dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(keystone: &str, service_password: &str) -> Result<(Server, String)> {
    let dir = TempDir::new("zun-bench");
    let port = free_port();
    let conf = dir.join("zun-api.toml");
    std::fs::write(
        &conf,
        format!(
            "[api]\nlisten = \"127.0.0.1:{port}\"\n[database]\nurl = \"sqlite://{}/zun.db\"\n\
             [keystone]\nauth_url = \"{keystone}\"\npassword = \"{service_password}\"\n",
            dir.display()
        ),
    )?;
    let bin = env!("CARGO_BIN_EXE_zun-api");
    let st = Command::new(bin)
        .args(["--config", conf.to_str().unwrap_or_default(), "db", "sync"])
        .stderr(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("zun-api db sync failed");
    }
    let log = std::fs::File::create(dir.join("zun-api.log"))?;
    let child = Command::new(bin)
        .args(["--config", conf.to_str().unwrap_or_default()])
        .env("ZUN_LOG", "warn")
        .stderr(log)
        .spawn()?;
    Ok((
        Server { child, _dir: dir },
        format!("http://127.0.0.1:{port}"),
    ))
}

async fn token(keystone: &str, user: &str, password: &str, project: &str) -> Result<String> {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
    let resp = reqwest::Client::new()
        .post(format!("{keystone}/auth/tokens?nocatalog"))
        .json(&body)
        .send()
        .await?;
    if resp.status().as_u16() != 201 {
        bail!("Keystone refused a token for {user}: {}", resp.status());
    }
    Ok(resp.headers()["x-subject-token"].to_str()?.to_owned())
}

struct Load {
    requests: u64,
    errors: u64,
    bytes: u64,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

async fn load(client: &reqwest::Client, url: &str, tok: &str, gzip: bool) -> Result<Load> {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, tok) = (client.clone(), url.to_owned(), tok.to_owned());
        let (stop, errors, bytes) = (stop.clone(), errors.clone(), bytes.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let mut req = client
                    .get(&url)
                    .header("x-auth-token", &tok)
                    .header("openstack-api-version", "container 1.40");
                if gzip {
                    // What python-requests (python-zunclient) sends by default.
                    req = req.header("accept-encoding", "gzip, deflate");
                }
                let r = req.send().await;
                match r {
                    Ok(resp) if resp.status().is_success() => match resp.bytes().await {
                        Ok(b) => {
                            bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                            lat.push(t.elapsed());
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    tokio::time::sleep(RUN).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await?);
    }
    let elapsed = start.elapsed();
    latencies.sort();
    Ok(Load {
        requests: latencies.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        bytes: bytes.load(Ordering::Relaxed),
        latencies,
        elapsed,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let keystone = env("ZUN_TEST_KEYSTONE_URL")?;
    let (_server, base) = start_server(&keystone, &env("ZUN_TEST_SERVICE_PASSWORD")?)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/")).send().await.is_err() {
        if Instant::now() > deadline {
            bail!("zun-api did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tok = token(&keystone, "demo", &env("ZUN_TEST_DEMO_PASSWORD")?, "demo").await?;

    // Create latency through the API alone, sequential.
    let mut create = Vec::with_capacity(CAPSULES);
    for i in 0..CAPSULES {
        let body: Value = json!({"template": {
            "kind": "capsule",
            "metadata": {"name": format!("bench-{i}"), "labels": {"app": "bench"}},
            "spec": {"containers": [
                {"image": "busybox", "command": ["sleep", "3600"]},
                {"image": "busybox", "command": ["sleep", "3600"]}]}}});
        let t = Instant::now();
        let resp = client
            .post(format!("{base}/v1/capsules"))
            .header("x-auth-token", &tok)
            .header("openstack-api-version", "container 1.40")
            .json(&body)
            .send()
            .await?;
        let status = resp.status();
        resp.bytes().await?;
        create.push(t.elapsed());
        if status.as_u16() != 202 {
            bail!("create answered {status}");
        }
    }
    create.sort();

    let list = format!("{base}/v1/capsules");
    let paged = format!("{base}/v1/capsules?limit=50");
    let full_gz = load(&client, &list, &tok, true).await?;
    let full = load(&client, &list, &tok, false).await?;
    let page = load(&client, &paged, &tok, false).await?;

    println!("zun-api benchmark (2-container capsules, SQLite, Keystone token cached)");
    println!(
        "{:<44} {:>10} {:>10} {:>12}",
        "measure", "p50 ms", "p99 ms", "rate"
    );
    println!(
        "{:<44} {:>10.2} {:>10.2} {:>10.0}/s",
        format!("POST /v1/capsules (API alone, n={CAPSULES})"),
        pct(&create, 0.5),
        pct(&create, 0.99),
        CAPSULES as f64 / create.iter().map(Duration::as_secs_f64).sum::<f64>()
    );
    for (name, l) in [
        (format!("GET /v1/capsules, all {CAPSULES}, gzip"), &full_gz),
        (format!("GET /v1/capsules, all {CAPSULES}, identity"), &full),
        ("GET /v1/capsules?limit=50, identity".to_owned(), &page),
    ] {
        println!(
            "{:<44} {:>10.2} {:>10.2} {:>10.0}/s   ({} KiB/response, {} errors, c={CONCURRENCY})",
            name,
            pct(&l.latencies, 0.5),
            pct(&l.latencies, 0.99),
            l.requests as f64 / l.elapsed.as_secs_f64(),
            l.bytes / l.requests.max(1) / 1024,
            l.errors,
        );
    }
    println!("target: GET /v1/capsules with 1,000 capsules >= 5,000 requests/s on 2 cores");

    let mut f = bench::Figures::new("api");
    f.latency("post_create", "POST /v1/capsules, API alone", &create);
    for (key, what, l) in [
        (
            "list_1000",
            "GET /v1/capsules, 1,000 capsules, identity",
            &full,
        ),
        (
            "list_1000_gzip",
            "GET /v1/capsules, 1,000 capsules, gzip",
            &full_gz,
        ),
        ("list_page50", "GET /v1/capsules?limit=50", &page),
    ] {
        let rate = l.requests as f64 / l.elapsed.as_secs_f64();
        f.value(key, &format!("{what}, c={CONCURRENCY}"), rate, "req/s");
        let p99 = pct(&l.latencies, 0.99);
        f.value(
            &format!("{key}_p99"),
            &format!("{what}: p99 latency"),
            p99,
            "ms",
        );
    }
    f.save()?;
    Ok(())
}
