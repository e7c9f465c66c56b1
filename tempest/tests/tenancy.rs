//! Tenancy and security end to end, as users of two projects and a reader meet them: another
//! project's capsules, volumes, groups and rules are invisible and untouchable through the real
//! clients and the raw APIs; default groups keep other projects' capsules out, directly and
//! through published ports; a reader reads and changes nothing; a revoked Keystone token stops
//! working within zun-api's cache bound and a forged one never works; and a container sees only
//! its own processes and interfaces and cannot write cgroupfs or gain privileges.
//!
//! Covered elsewhere, so not here: another project kept out of a capsule in a custom group, and
//! the host kept out of a published port, by `secgroups.rs`; expired OpenID Connect tokens by
//! `zun-api/tests/api/oidc.rs`.

mod tenancy_support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempest::{env, examples_dir, free_port, unique_name, zun, TemplateFile, User};
use tenancy_support::{
    body, capsule_body, capsule_guard, cli, create, logs_until, made, mount_volume, net_url,
    not_found, policy_refused, rule_body, running, vol_url, zun_url, Checks, DemoThings,
    GroupGuard, Raw, RuleGuard, VolumeGuard,
};

/// How long a rule change may take to reach the host's kernel in these tests.
const SETTLE: Duration = Duration::from_secs(20);

// --- 1. Project isolation -------------------------------------------------------------------

#[test]
fn another_project_can_neither_see_nor_touch_demos_capsules_volumes_and_groups() {
    let alt = User::AltDemo;
    let d = DemoThings::new("iso");
    let (u, n, v, g, rule) = (&d.u, &d.n, &d.v, &d.g, &d.rule);
    let mut c = Checks::default();

    // The real clients.
    let lists = "zun capsule-list,capsule list,volume list,security group list";
    for cmd in lists.split(',').chain(["security group rule list"]) {
        let r = cli(alt, cmd);
        let ok = r.code == Some(0) && !d.named_in(&r.stdout);
        c.expect(ok, || format!("alt `{cmd}` shows demo's: {r:?}"));
    }
    let refused = [
        format!("zun capsule-describe {u}"),
        format!("capsule show {n}"),
        format!("zun logs {}", d.container),
        format!("volume show {v}"),
        format!("volume delete {v}"),
        format!("volume set --name stolen {v}"),
        format!("security group show {g}"),
        format!("security group delete {g}"),
        format!("security group set --name stolen {g}"),
        format!("security group rule list {g}"),
        format!("security group rule show {rule}"),
        format!("security group rule delete {rule}"),
        format!("security group rule create {g} --protocol tcp"),
        // A rule of alt's own naming demo's group as its remote group.
        format!("security group rule create default --protocol tcp --remote-group {g}"),
    ];
    for cmd in refused {
        let r = cli(alt, &cmd);
        c.expect(not_found(&r), || format!("alt `{cmd}`: not a 404: {r:?}"));
    }
    // python-zunclient reports a failed delete on stdout and exits 0.
    let r = cli(alt, &format!("zun capsule-delete {u}"));
    let ok = r.stdout.contains("could not be found");
    c.expect(ok, || format!("alt zun capsule-delete: {r:?}"));
    // Capsules of alt's can neither mount demo's volume nor join demo's group (id or name).
    let uses = [
        ("volume", json!([]), "could not be found"),
        ("group id", json!([g]), "not found in this project"),
        ("group name", json!([n]), "not found in this project"),
    ];
    for (what, groups, message) in uses {
        let name = unique_name("iso-alt");
        let template = examples_dir().join("minimal.yaml");
        let file = TemplateFile::edited(&template, &name, |t| match what {
            "volume" => mount_volume(t, v),
            _ => t["spec"]["securityGroups"] = groups,
        });
        let _g = capsule_guard(alt, &name);
        let r = zun(alt, &["capsule-create", "-f", file.arg()]);
        let ok = r.code != Some(0) && r.stderr.contains(message);
        c.expect(ok, || format!("alt capsule with demo's {what}: {r:?}"));
    }

    // The raw APIs, with ids in the URLs.
    let raw = Raw::new();
    let s = raw.login(alt, "alt");
    let demo = raw.login(User::Demo, "demo").project;
    let (rules, p) = (net_url("/security-group-rules"), s.project.as_str());
    let lists = [
        zun_url("/capsules"),
        net_url("/security-groups"),
        net_url(&format!("/security-groups?id={g}")),
        net_url(&format!("/security-groups?project_id={demo}")),
        rules.clone(),
        format!("{rules}?security_group_id={g}"),
        vol_url(p, "/volumes/detail"),
        vol_url(p, "/volumes?all_tenants=1"),
    ];
    for url in lists {
        let r = raw.call("GET", &url, &s.token, None);
        let ok = r.status == 200 && !d.named_in(&r.body);
        c.expect(ok, || format!("alt GET {url}: shows demo's: {r:?}"));
    }
    let defaults = net_url("/security-groups?name=default");
    let r: Value =
        serde_json::from_str(&raw.call("GET", &defaults, &s.token, None).body).unwrap_or_default();
    let alt_default = r["security_groups"][0]["id"].as_str().unwrap_or_default();
    let (raw_v, raw_g) = (unique_name("iso-raw"), unique_name("iso-raw"));
    let _raw = (capsule_guard(alt, &raw_v), capsule_guard(alt, &raw_g));
    let (caps, cap) = (zun_url("/capsules"), zun_url(&format!("/capsules/{u}")));
    let by_name = zun_url(&format!("/capsules/{n}"));
    let logs = zun_url(&format!("/containers/{}/logs", d.container));
    let grp = net_url(&format!("/security-groups/{g}"));
    let rul = format!("{rules}/{rule}");
    let vol = vol_url(p, &format!("/volumes/{v}"));
    let (no_project, demos) = (vol_url("", &format!("/volumes/{v}")), vol.replace(p, &demo));
    let (action, meta) = (format!("{vol}/action"), format!("{vol}/metadata"));
    let stolen = || json!({"name": "stolen"});
    c.want(&s, 404, "GET", &cap, None);
    c.want(&s, 404, "GET", &by_name, None);
    c.want(&s, 404, "DELETE", &cap, None);
    c.want(&s, 404, "GET", &logs, None);
    let mounted = capsule_body(&raw_v, |t| mount_volume(t, v));
    c.want(&s, 404, "POST", &caps, mounted);
    c.want(&s, 404, "GET", &grp, None);
    c.want(&s, 404, "PUT", &grp, body("security_group", stolen()));
    c.want(&s, 404, "DELETE", &grp, None);
    c.want(&s, 404, "GET", &rul, None);
    c.want(&s, 404, "DELETE", &rul, None);
    c.want(&s, 404, "POST", &rules, rule_body(g, 3, None));
    c.want(&s, 404, "POST", &rules, rule_body(alt_default, 3, Some(g)));
    c.want(&s, 404, "GET", &vol, None);
    c.want(&s, 404, "GET", &no_project, None);
    c.want(&s, 404, "PUT", &vol, body("volume", stolen()));
    c.want(&s, 404, "DELETE", &vol, None);
    c.want(
        &s,
        404,
        "POST",
        &action,
        body("os-extend", json!({"new_size": 2})),
    );
    c.want(&s, 404, "GET", &meta, None);
    c.want(&s, 404, "POST", &meta, body("metadata", stolen()));
    let grouped = capsule_body(&raw_g, |t| t["spec"]["securityGroups"] = json!([g]));
    c.want(&s, 400, "POST", &caps, grouped);
    // Demo's project in the URL: refused, not served.
    c.want(&s, 400, "GET", &demos, None);
    c.want(&s, 403, "GET", &format!("{caps}?all_projects=1"), None);

    d.check_intact(&mut c);
    c.done("project isolation");
}

// --- 2. Reach between projects' default groups -----------------------------------------------

/// A capsule printing `D OPEN|CLOSED` (direct) and `P OPEN|CLOSED` (published port) each second.
struct Prober {
    user: User,
    container: String,
    who: &'static str,
}

impl Prober {
    /// The probes `tag` printed so far: `true` for a connection made.
    fn probes(&self, tag: &str) -> Vec<bool> {
        let logs = zun(self.user, &["logs", &self.container]).ok().stdout;
        let results = logs.lines().filter_map(|l| l.trim().strip_prefix(tag));
        results.map(|r| r == " OPEN").collect()
    }

    /// Waits until the last `n` probes `tag` (at least `n`) are all `open`.
    fn settles(&self, tag: &str, n: usize, open: bool, when: &str) {
        let deadline = Instant::now() + SETTLE + Duration::from_secs(n as u64 * 3);
        loop {
            let p = self.probes(tag);
            if p.len() >= n && p[p.len() - n..].iter().all(|o| *o == open) {
                return;
            }
            let who = self.who;
            assert!(
                Instant::now() < deadline,
                "{who} {when}: probes {tag}: {p:?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

#[test]
fn default_groups_keep_other_projects_out_directly_and_through_published_ports() {
    let port = free_port();
    let a = create(
        User::Demo,
        "reach-a",
        "exec httpd -f -p 8080 -h /etc",
        |v| {
            let ports = json!([{"containerPort": 8080, "hostPort": port, "protocol": "TCP"}]);
            v["spec"]["containers"][0]["ports"] = ports;
        },
    );
    let a = running(&a).0;
    let ip = a["addresses"].as_str().expect("an address");
    // Direct to A's address, and to A's published port on the capsule network's gateway (the
    // host: DNAT, then back over the bridge).
    let script = format!(
        "gw=$(ip route | awk '/^default/ {{print $3}}'); echo \"GW $gw\"; while true; do \
         for t in 'D {ip} 8080' \"P $gw {port}\"; do set -- $t; \
         if nc -w 2 $2 $3 </dev/null; then echo \"$1 OPEN\"; else echo \"$1 CLOSED\"; fi; \
         done; sleep 1; done"
    );
    // B: alt_demo's, in alt_demo's default group. C: demo's, in demo's default group, whose
    // rule lets the group's members in: the prober works.
    let gb = create(User::AltDemo, "reach-b", &script, |_| {});
    let gc = create(User::Demo, "reach-c", &script, |_| {});
    let (user, container, who) = (User::AltDemo, running(&gb).2, "alt_demo's capsule");
    let b = Prober {
        user,
        container,
        who,
    };
    let (user, container, who) = (User::Demo, running(&gc).2, "demo's own capsule");
    let c = Prober {
        user,
        container,
        who,
    };
    for tag in ["D", "P"] {
        c.settles(tag, 2, true, "with no rule");
        b.settles(tag, 3, false, "with no rule");
        let reached = b.probes(tag).into_iter().filter(|o| *o).count();
        assert_eq!(
            reached, 0,
            "alt_demo reached demo's capsule ({tag}) with no rule"
        );
    }
    println!("alt_demo kept out of {ip}:8080 and published port {port}; demo's own capsule not");

    // The control: demo opens tcp 8080 to everyone, and the same probes get through.
    let rule = "security group rule create default --protocol tcp --dst-port 8080:8080";
    let rule = made(User::Demo, &format!("{rule} --remote-ip 0.0.0.0/0"));
    let rule = RuleGuard(User::Demo, rule);
    for tag in ["D", "P"] {
        b.settles(tag, 1, true, "after demo's rule");
    }
    // Once the rule is deleted, new connections are refused again; demo's own still made.
    cli(
        User::Demo,
        &format!("security group rule delete {}", rule.1),
    )
    .ok();
    for tag in ["D", "P"] {
        b.settles(tag, 3, false, "after the rule went");
        c.settles(tag, 1, true, "after the rule went");
    }
}

// --- 3. Reader ------------------------------------------------------------------------------

#[test]
fn a_reader_reads_demos_capsules_volumes_and_groups_and_changes_nothing() {
    let rd = User::Reader;
    let d = DemoThings::new("rd");
    let (u, n, v, g, rule) = (&d.u, &d.n, &d.v, &d.g, &d.rule);
    let mut c = Checks::default();

    // Each: a command, and what its output must name.
    let reads = [
        ("zun capsule-list".to_owned(), n),
        (format!("zun capsule-describe {n}"), u),
        (format!("capsule show {u}"), n),
        (format!("zun logs {}", d.container), &String::new()),
        ("volume list".to_owned(), v),
        (format!("volume show {v}"), v),
        ("security group list".to_owned(), g),
        (format!("security group show {g}"), rule),
        (format!("security group rule list {g}"), rule),
        (format!("security group rule show {rule}"), rule),
    ];
    for (cmd, id) in reads {
        let r = cli(rd, &cmd);
        let ok = r.code == Some(0) && r.stdout.contains(id.as_str());
        c.expect(ok, || format!("reader `{cmd}`: {r:?}"));
    }
    // Names for what the reader tries to make (the clients, then the raw APIs): the guards
    // delete whatever gets made all the same.
    let (new, raw_new) = (unique_name("rd"), unique_name("rd-raw"));
    let volumes = (
        VolumeGuard(User::Demo, new.clone()),
        VolumeGuard(User::Demo, raw_new.clone()),
    );
    let groups = (
        GroupGuard(User::Demo, new.clone()),
        GroupGuard(User::Demo, raw_new.clone()),
    );
    let capsules = (
        capsule_guard(User::Demo, &new),
        capsule_guard(User::Demo, &raw_new),
    );
    let _made = (capsules, volumes, groups);
    let file = TemplateFile::renamed(&examples_dir().join("minimal.yaml"), &new);
    // Each: the policy rule that must refuse, then the command.
    let attempts = [
        format!("volume:create volume create --size 1 {new}"),
        format!("volume:update volume set --name stolen {v}"),
        format!("volume:delete volume delete {v}"),
        format!("create_security_group security group create {new}"),
        format!("update_security_group security group set --name stolen {g}"),
        format!("delete_security_group security group delete {g}"),
        format!("create_security_group_rule security group rule create {g} --protocol tcp"),
        format!("delete_security_group_rule security group rule delete {rule}"),
        format!("capsule:create zun capsule-create -f {}", file.arg()),
    ];
    for attempt in attempts {
        let (policy, cmd) = attempt.split_once(' ').expect("rule, command");
        let r = cli(rd, cmd);
        c.expect(policy_refused(&r, policy), || {
            format!("reader `{cmd}`: {r:?}")
        });
    }

    let raw = Raw::new();
    let s = raw.login(rd, "reader");
    let (caps, cap) = (zun_url("/capsules"), zun_url(&format!("/capsules/{u}")));
    let (vols, vol) = (
        vol_url(&s.project, "/volumes"),
        vol_url(&s.project, &format!("/volumes/{v}")),
    );
    let (grps, grp) = (
        net_url("/security-groups"),
        net_url(&format!("/security-groups/{g}")),
    );
    let (rules, meta) = (net_url("/security-group-rules"), format!("{vol}/metadata"));
    let rul = format!("{rules}/{rule}");
    let logs = zun_url(&format!("/containers/{}/logs", d.container));
    for url in [&cap, &logs, &vol, &grp, &rul] {
        c.want(&s, 200, "GET", url, None);
    }
    let (stolen, named) = (
        || json!({"name": "stolen"}),
        json!({"name": raw_new, "size": 1}),
    );
    c.want(&s, 403, "POST", &vols, body("volume", named.clone()));
    c.want(&s, 403, "PUT", &vol, body("volume", stolen()));
    c.want(&s, 403, "POST", &meta, body("metadata", stolen()));
    c.want(&s, 403, "DELETE", &vol, None);
    c.want(&s, 403, "POST", &grps, body("security_group", named));
    c.want(&s, 403, "PUT", &grp, body("security_group", stolen()));
    c.want(&s, 403, "DELETE", &grp, None);
    c.want(&s, 403, "POST", &rules, rule_body(g, 5, None));
    c.want(&s, 403, "DELETE", &rul, None);
    c.want(&s, 403, "POST", &caps, capsule_body(&raw_new, |_| {}));
    // Capsule deletes last: one let through removes demo's capsule.
    c.want(&s, 403, "DELETE", &cap, None);
    // python-zunclient reports a failed delete on stdout and exits 0.
    let r = cli(rd, &format!("zun capsule-delete {n}"));
    let ok = r.stdout.contains("Policy doesn't allow capsule:delete");
    c.expect(ok, || format!("reader zun capsule-delete: {r:?}"));

    d.check_intact(&mut c);
    c.done("reader");
}
// --- 4. Tokens ------------------------------------------------------------------------------

/// zun-api's `[keystone] token_cache_seconds` in devstack's config (zun-api's default, 300,
/// when the file does not set it): how long a validated token is trusted without Keystone.
fn token_cache_seconds() -> u64 {
    let dir = std::env::var("STACK_DIR").unwrap_or_else(|_| "/opt/capsule".into());
    let path = Path::new(&dir).join("etc/zun/zun-api.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("zun-api's config {}: {e}", path.display()));
    let mut section = "";
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if let (true, Some((k, v))) = (section == "[keystone]", line.split_once('=')) {
            if k.trim() == "token_cache_seconds" {
                return v.trim().parse().expect("token_cache_seconds is a number");
            }
        }
    }
    300
}

/// A token of Fernet's shape that Keystone never issued: version 0x80, a current timestamp,
/// then random IV, ciphertext and HMAC, in URL-safe base64 without padding.
fn forged_fernet() -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let mut bytes = vec![0x80];
    bytes.extend_from_slice(&now.expect("clock").as_secs().to_be_bytes());
    (0..8).for_each(|_| bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes()));
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let bits = |n, (i, b): (usize, &u8)| n | u32::from(*b) << (16 - 8 * i);
        let n = chunk.iter().enumerate().fold(0u32, bits);
        let sextet = |i: usize| char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]);
        out.extend((0..=chunk.len()).map(sextet));
    }
    out
}

#[test]
fn a_revoked_token_is_refused_within_the_cache_bound_and_a_forged_one_at_once() {
    let raw = Raw::new();
    let keystone = format!("{}/auth/tokens", env("ZUN_TEST_KEYSTONE_URL"));
    let ttl = Duration::from_secs(token_cache_seconds());
    let witness = raw.login(User::Demo, "demo");
    let urls = [
        zun_url("/capsules"),
        net_url("/security-groups"),
        vol_url(&witness.project, "/volumes"),
    ];
    let get = |url: &str, token: &str| raw.call("GET", url, token, None);
    let revoke = |token: &str| {
        let r = raw.request("DELETE", &keystone, token);
        let r = raw.send(r.header("X-Subject-Token", token));
        assert_eq!(r.status, 204, "revoke: {}", r.body);
        let r = raw.request("GET", &keystone, &witness.token);
        let r = raw.send(r.header("X-Subject-Token", token));
        assert_eq!(
            r.status, 404,
            "Keystone still validates the revoked token: {r:?}"
        );
    };

    // Never issued: refused by every API at once.
    for token in [forged_fernet(), uuid::Uuid::new_v4().simple().to_string()] {
        for url in &urls {
            let r = get(url, &token);
            assert_eq!(r.status, 401, "forged token {token} on {url}: {}", r.body);
        }
    }
    // Revoked before zun-api ever saw it: refused at once.
    let unseen = raw.login(User::Demo, "demo").token;
    revoke(&unseen);
    for url in &urls {
        let r = get(url, &unseen);
        assert_eq!(r.status, 401, "revoked, unseen token on {url}: {}", r.body);
    }

    // Used once, so that zun-api caches it, then revoked: refused once the entry lapses.
    let token = raw.login(User::Demo, "demo").token;
    let used = Instant::now();
    for url in &urls {
        let r = get(url, &token);
        assert_eq!(r.status, 200, "fresh token on {url}: {}", r.body);
    }
    revoke(&token);
    let revoked = Instant::now();
    let deadline = revoked + ttl + Duration::from_secs(5);
    let mut refused: Vec<Option<Duration>> = vec![None; urls.len()];
    while refused.iter().any(Option::is_none) {
        for (url, at) in urls
            .iter()
            .zip(refused.iter_mut())
            .filter(|(_, at)| at.is_none())
        {
            let r = get(url, &token);
            assert!(
                [200, 401].contains(&r.status),
                "revoked token on {url}: {r:?}"
            );
            if r.status == 401 {
                *at = Some(revoked.elapsed());
            }
        }
        let state: Vec<_> = urls.iter().zip(&refused).collect();
        let late = Instant::now() > deadline;
        assert!(
            !late,
            "a revoked token works after {ttl:?} + 5 s: {state:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for (url, at) in urls.iter().zip(refused.into_iter().flatten()) {
        let (after, since_use) = (at.as_secs_f64(), (at + (revoked - used)).as_secs_f64());
        println!(
            "revoked token refused by {url} {after:.1} s after revocation, {since_use:.1} s \
             after its first use ([keystone] token_cache_seconds = {})",
            ttl.as_secs()
        );
    }
}

// --- 5. Containers stay in their box ---------------------------------------------------------

/// Capabilities no container of ours may have (bit numbers, `linux/capability.h`).
const FORBIDDEN_CAPS: &[(u32, &str)] = &[
    (2, "DAC_READ_SEARCH"),
    (12, "NET_ADMIN"),
    (13, "NET_RAW"),
    (16, "SYS_MODULE"),
    (17, "SYS_RAWIO"),
    (19, "SYS_PTRACE"),
    (21, "SYS_ADMIN"),
    (25, "SYS_TIME"),
    (34, "SYSLOG"),
    (39, "BPF"),
];
/// Podman's default set (Docker's without `NET_RAW`), which `zun-compute/src/shim/spec.rs`
/// gives a root container.
const DEFAULT_CAPS: u64 = 0xa804_05fb;

/// What the container tries, by name; each must fail. `{cg}` is its memory cgroup directory
/// (read-only cgroupfs), `{limit}` its limit file there, `{disk}` the host's first disk. The
/// sysrq attempt only where the host's kernel has `/proc/sysrq-trigger`.
const ATTEMPTS: &str = r#"try cgroup_mkdir 'mkdir {cg}/escape'
try cgroup_procs 'echo $$ > {cg}/cgroup.procs'
try cgroup_limit 'echo 9223372036854771712 > {cg}/{limit}'
try mount_tmpfs 'mkdir -p /tmp/m && mount -t tmpfs none /tmp/m'
try remount_sys 'mount -o remount,rw /sys'
try proc_sys_hostname 'echo evil > /proc/sys/kernel/hostname'
try sethostname 'hostname evil'
try sysrq 'echo h > /proc/sysrq-trigger'
try sysfs_write 'echo 65536 > /sys/class/net/lo/mtu'
try unshare_user 'unshare -r true'
try unshare_net 'unshare -n true'
try dmesg 'dmesg > /dev/null'
try host_disk 'mknod /tmp/disk b {disk} && head -c 512 /tmp/disk > /dev/null'"#;

/// What the container prints about itself, each line tagged.
const FACTS: &str = r#"try() { if o=$(sh -c "$2" 2>&1); then echo "ALLOWED $1 $o"; else echo "REFUSED $1 $o"; fi; }
ps -o pid,comm > /tmp/ps; sed 's/^/PS /' /tmp/ps
ip link | grep -E '^[0-9]+:' | sed 's/^/LINK /'
sed 1,2d /proc/net/dev | sed 's/^/NETDEV /'
grep -E '^(NoNewPrivs|Seccomp|CapEff|CapBnd):' /proc/self/status | sed 's/^/STATUS /'
for f in kcore keys timer_list; do echo "MASKED $f $(head -c 64 /proc/$f 2>/dev/null | wc -c)"; done"#;

#[test]
fn a_container_sees_only_its_own_processes_and_interfaces_and_cannot_escalate() {
    // As the container sees its memory cgroup: the host's hierarchy (v1 or v2) decides.
    let (cg, limit) = match Path::new("/sys/fs/cgroup/memory").is_dir() {
        true => ("/sys/fs/cgroup/memory", "memory.limit_in_bytes"),
        false => ("/sys/fs/cgroup", "memory.max"),
    };
    let partitions = std::fs::read_to_string("/proc/partitions").unwrap_or_default();
    let disk = (partitions
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>()))
    .find(|f| f.len() == 4 && f[0].parse::<u32>().is_ok())
    .map_or("8 0".to_owned(), |f| format!("{} {}", f[0], f[1]));
    let sysrq = Path::new("/proc/sysrq-trigger").exists();
    let attempts: Vec<&str> = (ATTEMPTS.lines())
        .filter(|l| sysrq || !l.contains("sysrq"))
        .collect();
    let want = attempts.len();
    let attempts = attempts
        .join("\n")
        .replace("{cg}", cg)
        .replace("{limit}", limit);
    let attempts = attempts.replace("{disk}", &disk);
    let script = format!("{FACTS}\n{attempts}\necho END\nexec sleep infinity");
    let guard = create(User::Demo, "box", &script, |_| {});
    let logs = logs_until(User::Demo, &running(&guard).2, "END");
    println!("{logs}");
    let lines = |tag: &str| -> Vec<String> {
        let tag = format!("{tag} ");
        logs.lines()
            .filter_map(|l| l.strip_prefix(&tag).map(str::to_owned))
            .collect()
    };
    let mut c = Checks::default();

    // Processes: the pause process as PID 1, then the script's own; nothing of the host.
    let procs: Vec<(u32, String)> = (lines("PS").iter())
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.parse().ok()?, f.next()?.to_owned()))
        })
        .collect();
    let pause = procs.first().is_some_and(|p| *p == (1, "pause".into()));
    c.expect(pause, || {
        format!("PID 1 is not the pause process: {procs:?}")
    });
    let own = procs
        .iter()
        .all(|(_, comm)| ["pause", "sh", "ps"].contains(&comm.as_str()));
    c.expect(own, || {
        format!("processes other than the capsule's are visible: {procs:?}")
    });
    // Interfaces: lo and eth0 only.
    let links: Vec<String> = (lines("LINK").iter())
        .filter_map(|l| l.split_whitespace().nth(1).map(|n| n.trim_end_matches(':')))
        .map(|n| n.split('@').next().unwrap_or("").to_owned())
        .collect();
    let netdev = (lines("NETDEV").iter())
        .filter_map(|l| l.split(':').next().map(|n| n.trim().to_owned()))
        .collect();
    for (what, mut names) in [("ip link", links), ("/proc/net/dev", netdev)] {
        names.sort();
        c.expect(names == ["eth0", "lo"], || {
            format!("{what} shows {names:?}")
        });
    }
    // Privileges.
    let status = lines("STATUS");
    let field = |k: &str| {
        let v = status
            .iter()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix(':'));
        v.map(str::trim).unwrap_or("").to_owned()
    };
    c.expect(field("NoNewPrivs") == "1", || {
        format!("NoNewPrivs: {status:?}")
    });
    c.expect(field("Seccomp") == "2", || {
        format!("no seccomp filter: {status:?}")
    });
    let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap");
    let last_cap: u32 = last_cap
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let full = (1u64 << (last_cap + 1)) - 1;
    for k in ["CapEff", "CapBnd"] {
        let caps = u64::from_str_radix(&field(k), 16).unwrap_or(full);
        c.expect(caps != full, || format!("{k} is the full set: {caps:#x}"));
        for (bit, cap) in FORBIDDEN_CAPS {
            c.expect(caps & (1 << bit) == 0, || {
                format!("{k} has CAP_{cap}: {caps:#x}")
            });
        }
        let default = caps == DEFAULT_CAPS;
        c.expect(default, || {
            format!("{k} is {caps:#x}, not podman's set {DEFAULT_CAPS:#x}")
        });
    }
    // Masked files read as empty.
    for l in lines("MASKED") {
        c.expect(l.ends_with(" 0"), || format!("masked file readable: {l}"));
    }
    // Every attempt refused; cgroupfs, /proc/sys and /sys refuse as read-only.
    let tried = lines("ALLOWED").len() + lines("REFUSED").len();
    c.expect(tried == want, || {
        format!("{tried} of {want} attempts reported")
    });
    for l in lines("ALLOWED") {
        c.expect(false, || format!("allowed in the container: {l}"));
    }
    for l in lines("REFUSED") {
        let ro = ["cgroup_", "proc_sys_", "sysrq", "sysfs_"]
            .iter()
            .any(|p| l.starts_with(p));
        let ok = !ro || l.contains("Read-only file system");
        c.expect(ok, || format!("refused, but not as read-only: {l}"));
    }
    c.done("containment");
}
