//! How long a security-group rule change takes to reach the compute host's kernel, through
//! the whole path (network API, database, epoch, AMQP, agent, nftables): a rule created in a
//! project's default group is timed until the host's table has it, and its delete until the
//! table no longer has it. Runs against the devstack stack, with one busybox capsule of demo's
//! in the default group (made and deleted here). Prints p50/p99.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempest::{
    examples_dir, unique_name, wait_gone, wait_status, zun, CapsuleGuard, TemplateFile, User,
};

const ROUNDS: u16 = 30;

fn table() -> String {
    std::env::var("ZUN_TEST_FIREWALL_TABLE").unwrap_or_else(|_| "capsule_sg".into())
}

fn nft_table() -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "table", "inet", &table()])
        .output()
        .expect("run nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls the host's table until `pred` holds; how long that took.
fn until(t0: Instant, pred: impl Fn(&str) -> bool) -> Duration {
    loop {
        if pred(&nft_table()) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the change never reached the host"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn report(what: &str, mut d: Vec<Duration>) {
    d.sort();
    let pct = |p: f64| bench::percentile_ms(&d, p);
    println!(
        "{what:<42} n={:<3} p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
        d.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let net = std::env::var("ZUN_TEST_NETWORK_API_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:9696".into());
    let token = tempest::token(User::Demo).await;
    let client = reqwest::Client::new();
    let name = unique_name("sg-bench");
    let file = TemplateFile::renamed(&examples_dir().join("minimal.yaml"), &name);
    let _guard = CapsuleGuard {
        name: name.clone(),
        owner: User::Demo,
    };
    zun(User::Demo, &["capsule-create", "-f", file.arg()]).ok();
    let capsule = wait_status(User::Demo, &name, "Running", Duration::from_secs(120));
    let chain = format!("in_{}", capsule["uuid"].as_str().unwrap().replace('-', "_"));
    until(Instant::now(), |t| t.contains(&chain));

    let groups: Value = client
        .get(format!("{net}/v2.0/security-groups?name=default"))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let default = groups["security_groups"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Rules an interrupted earlier run left in the port range this bench uses.
    let rules: Value = client
        .get(format!(
            "{net}/v2.0/security-group-rules?security_group_id={default}"
        ))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for r in rules["security_group_rules"].as_array().unwrap() {
        let min = r["port_range_min"].as_u64().unwrap_or(0);
        if (20000..20000 + u64::from(ROUNDS)).contains(&min) {
            let id = r["id"].as_str().unwrap();
            client
                .delete(format!("{net}/v2.0/security-group-rules/{id}"))
                .header("x-auth-token", &token)
                .send()
                .await
                .unwrap();
        }
    }

    let (mut api_add, mut add, mut del) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        let port = 20000 + i;
        // The agent renders a tcp rule as `tcp dport N accept`.
        let needle = format!(" dport {port} accept");
        let t0 = Instant::now();
        let r: Value = client
            .post(format!("{net}/v2.0/security-group-rules"))
            .header("x-auth-token", &token)
            .json(&json!({"security_group_rule": {"security_group_id": default, "direction": "ingress",
                "protocol": "tcp", "port_range_min": port, "port_range_max": port,
                "remote_ip_prefix": "0.0.0.0/0"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        api_add.push(t0.elapsed());
        let id = r["security_group_rule"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_owned();
        add.push(until(t0, |t| t.contains(&needle)));
        let t1 = Instant::now();
        let status = client
            .delete(format!("{net}/v2.0/security-group-rules/{id}"))
            .header("x-auth-token", &token)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 204);
        del.push(until(t1, |t| !t.contains(&needle)));
    }
    println!("security groups: rule change -> host's nftables table ({ROUNDS} rounds, one host)");
    let mut f = bench::Figures::new("sg");
    for (key, what, d) in [
        ("rule_create_api", "rule create: API answered", api_add),
        (
            "rule_create_in_table",
            "rule create -> in the host's table",
            add,
        ),
        (
            "rule_delete_from_table",
            "rule delete -> gone from the host's table",
            del,
        ),
    ] {
        f.latency(key, what, &d);
        report(what, d);
    }
    f.save().expect("bench/out/sg.json");
    zun(User::Demo, &["capsule-delete", &name]).ok();
    wait_gone(User::Demo, &name, Duration::from_secs(120));
}
