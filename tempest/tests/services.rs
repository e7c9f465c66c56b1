//! Compute services as operators see them with the real clients: an agent this test starts on
//! the stack's broker shows up in `zun service-list` and `openstack appcontainer service list`,
//! and shows down within the configured time after it is killed.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempest::{env, openstack, unique_name, zun, User};

/// An agent process with its own state; killed and its service row removed when dropped.
struct Agent {
    host: String,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl Agent {
    fn start() -> Self {
        let host = unique_name("tempest-host");
        let dir = std::env::temp_dir().join(&host);
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("zun-compute.toml");
        std::fs::write(
            &conf,
            format!(
                "[compute]\nhost = \"{host}\"\nstate_dir = \"{}\"\nheartbeat_seconds = 1\n\
                 [rpc]\nurl = \"{}\"\n[resources]\ncpus = 1.0\nmemory_mib = 256\n\
                 [metrics]\nlisten = \"127.0.0.1:0\"\n",
                dir.display(),
                env("ZUN_TEST_RABBIT_URL")
            ),
        )
        .unwrap();
        let child = Command::new(env("ZUN_TEST_COMPUTE_BIN"))
            .arg("--config")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start zun-compute");
        Self {
            host,
            dir,
            child: Some(child),
        }
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
        let _ = zun(User::Admin, &["service-delete", &self.host, "zun-compute"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The state `zun service-list` prints for `host`, if it lists it.
fn zun_state(host: &str) -> Option<&'static str> {
    let out = zun(User::Admin, &["service-list"]).ok().stdout;
    let line = out.lines().find(|l| l.contains(host))?;
    if line.contains("| up ") {
        Some("up")
    } else if line.contains("| down ") {
        Some("down")
    } else {
        None
    }
}

fn wait_state(host: &str, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if zun_state(host) == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{host} never showed {want} in zun service-list"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_compute_service_shows_up_and_then_down_after_it_dies() {
    let down_after: u64 = env("ZUN_TEST_SERVICE_DOWN_SECONDS").parse().unwrap();
    let mut agent = Agent::start();
    wait_state(&agent.host, "up", Duration::from_secs(30));
    let listed = openstack(
        User::Admin,
        &["appcontainer", "service", "list", "-f", "json"],
    )
    .ok()
    .json();
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s.to_string().contains(&agent.host))
        .unwrap_or_else(|| panic!("{} not in {listed}", agent.host));
    assert_eq!(row["State"], "up", "{row}");
    assert_eq!(row["Binary"], "zun-compute");
    // Only admins may list services.
    let r = zun(User::Demo, &["service-list"]);
    assert_ne!(r.code, Some(0));
    assert!(r.stderr.contains("zun-service:get_all"), "{}", r.stderr);

    let killed = Instant::now();
    agent.kill9();
    wait_state(&agent.host, "down", Duration::from_secs(down_after + 10));
    let took = killed.elapsed();
    assert!(
        took >= Duration::from_secs(down_after.saturating_sub(2)),
        "down after {took:?}, before the configured {down_after} s of silence"
    );
}
