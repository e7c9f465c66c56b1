//! A private RabbitMQ node for tests: its own `epmd`, ports, data directory and credentials,
//! so a test may stop and restart its broker without touching anyone else's, and look into or
//! empty its queues (`rabbitmqctl`) to lose a message on purpose. Everything it started is
//! stopped, and its directory removed, when it is dropped.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, wait, TempDir};

const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const RABBITMQCTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";
const EPMD: &str = "/usr/bin/epmd";
/// The virtual host every queue of the node is in (the URL's).
const VHOST: &str = "zun";

/// A RabbitMQ node this test owns.
pub struct PrivateBroker {
    dir: TempDir,
    node: String,
    amqp_port: u16,
    dist_port: u16,
    epmd_port: u16,
    password: String,
    epmd: Child,
    server: Option<Child>,
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

impl PrivateBroker {
    /// Starts a node and waits until it accepts AMQP connections. Panics (failing the test,
    /// with the reason) if RabbitMQ is not installed or does not come up.
    pub fn start() -> Self {
        assert!(
            std::path::Path::new(RABBITMQ_SERVER).exists(),
            "{RABBITMQ_SERVER} is missing: devstack/stack.sh installs rabbitmq-server"
        );
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = TempDir::new("zun-rabbit");
        let epmd_port = free_port();
        let epmd = Command::new(EPMD)
            .args(["-address", "127.0.0.1", "-port", &epmd_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start epmd");
        let mut b = Self {
            node: format!("zt{}@localhost", &id[..8]),
            amqp_port: free_port(),
            dist_port: free_port(),
            epmd_port,
            password: id[12..28].to_owned(),
            dir,
            epmd,
            server: None,
        };
        std::fs::write(
            b.dir.join("rabbitmq.conf"),
            format!(
                "listeners.tcp.default = 127.0.0.1:{}\ndefault_user = zun\ndefault_pass = {}\n\
                 default_vhost = zun\ndefault_permissions.configure = .*\n\
                 default_permissions.read = .*\ndefault_permissions.write = .*\n",
                b.amqp_port, b.password
            ),
        )
        .expect("rabbitmq.conf");
        std::fs::write(b.dir.join("enabled_plugins"), "[].\n").expect("enabled_plugins");
        b.start_server();
        b
    }

    /// A command run with the node's environment: its home (and so its Erlang cookie), name,
    /// directories and `epmd`.
    fn node_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("HOME", self.dir.path())
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", self.dir.join("rabbitmq"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                self.dir.join("enabled_plugins"),
            )
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1");
        cmd
    }

    fn start_server(&mut self) {
        let log = std::fs::File::create(self.dir.join("server.log")).expect("server log");
        let child = self
            .node_command(RABBITMQ_SERVER)
            // The server's own distribution port (the command-line tools pick theirs).
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            // Its own process group: the script runs the Erlang VM as a child, and both (and
            // the VM's helpers) must go together.
            .process_group(0)
            .spawn()
            .expect("start rabbitmq-server");
        self.server = Some(child);
        wait::until(Duration::from_secs(60), Duration::from_millis(100), || {
            if port_open(self.amqp_port) {
                Ok(())
            } else {
                Err(format!(
                    "rabbitmq did not start; see {}",
                    self.dir.join("server.log").display()
                ))
            }
        });
    }

    /// Stops the node (SIGTERM, as an operator's restart would) and waits until it is gone.
    /// Durable queues and persistent messages survive for [`Self::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.server.take() {
            signal_group(&child, "TERM");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                if Instant::now() > deadline {
                    signal_group(&child, "KILL");
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Kills the node with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.server.take() {
            signal_group(&child, "KILL");
            let _ = child.wait();
            // The group's other members (the VM) are not our children; wait until they are
            // gone so the ports are free for a restart.
            let deadline = Instant::now() + Duration::from_secs(10);
            while port_open(self.amqp_port) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Starts the stopped node again, with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.start_server();
    }

    /// Starts the node again after [`Self::stop`] or [`Self::kill`].
    pub fn start_again(&mut self) {
        assert!(self.server.is_none(), "the broker is running");
        self.start_server();
    }

    /// Runs `rabbitmqctl <args>` against the node (quiet, no table headers) and returns what
    /// it printed; panics with its error output when it fails.
    fn ctl(&self, args: &[&str]) -> String {
        let out = self
            .node_command(RABBITMQCTL)
            .args(["-n", &self.node, "-q"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run rabbitmqctl");
        assert!(
            out.status.success(),
            "rabbitmqctl {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// How many messages `queue` holds (ready, and delivered but not yet acknowledged);
    /// `None` if there is no such queue.
    pub fn queue_messages(&self, queue: &str) -> Option<u64> {
        let out = self.ctl(&[
            "list_queues",
            "-p",
            VHOST,
            "--no-table-headers",
            "name",
            "messages",
        ]);
        out.lines().find_map(|l| {
            let (name, n) = l.split_once('\t')?;
            (name == queue).then(|| {
                n.trim()
                    .parse()
                    .unwrap_or_else(|e| panic!("rabbitmqctl list_queues: {l:?}: {e}"))
            })
        })
    }

    /// Empties `queue`, as if its messages had been lost; returns how many it held just
    /// before. Panics if there is no such queue.
    pub fn purge_queue(&self, queue: &str) -> u64 {
        let held = self
            .queue_messages(queue)
            .unwrap_or_else(|| panic!("purge_queue: there is no queue {queue}"));
        self.ctl(&["purge_queue", "-p", VHOST, queue]);
        held
    }

    /// The AMQP URL of the node (user `zun`, vhost `zun`).
    pub fn url(&self) -> String {
        format!(
            "amqp://zun:{}@127.0.0.1:{}/zun",
            self.password, self.amqp_port
        )
    }
}

/// Sends `signal` to the process group led by `child` (which we started in its own group).
fn signal_group(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{}", child.id())])
        .status();
}

impl PrivateBroker {
    /// Prints the end of the node's logs (the server's output and RabbitMQ's own log) to
    /// stderr, which the test harness shows with the failure.
    fn print_log_tail(&self) {
        let mut logs = vec![self.dir.join("server.log")];
        if let Ok(entries) = std::fs::read_dir(self.dir.join("log")) {
            logs.extend(entries.flatten().map(|e| e.path()));
        }
        for path in logs {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            eprintln!("--- {} (last {} lines)", path.display(), tail.len());
            for l in tail {
                eprintln!("{l}");
            }
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        // A failing test shows what its broker said: the node's log goes with its directory.
        if std::thread::panicking() {
            self.print_log_tail();
        }
        self.kill();
        let _ = self.epmd.kill();
        let _ = self.epmd.wait();
        // The directory goes with `self.dir`, after this.
    }
}
