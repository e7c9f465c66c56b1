//! The OCI specs the shim gives libcontainer: the sandbox's and each container's, with the same
//! hardening as runc/podman defaults (masked and read-only paths, Docker's default capability
//! set, no new privileges, a seccomp deny list, a device allow list) plus read-only `/sys` and
//! cgroupfs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Arch, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxResourcesBuilder, LinuxSeccomp, LinuxSeccompAction,
    LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscallBuilder, Mount,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};
use oci_spec::OciSpecError;

use super::plan::{ContainerPlan, Plan, SANDBOX_CGROUP};

/// Facts about the host the specs depend on.
#[derive(Clone, Debug)]
pub(crate) struct Host {
    /// The hard `RLIMIT_NOFILE` of the shim: containers never get more (no `CAP_SYS_RESOURCE`
    /// needed).
    pub nofile_hard: u64,
    /// The controller hierarchies' mount points (`/sys/fs/cgroup/memory`, ... on cgroup v1;
    /// `/sys/fs/cgroup` alone on v2). Each container sees its own cgroup of each, read-only, at
    /// the same place.
    pub cgroup_mounts: Vec<PathBuf>,
    /// Whether `memory.memsw.limit_in_bytes` exists (swap accounting on cgroup v1).
    pub memsw: bool,
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// What Docker and podman give a container by default (runc's nofile is 1024:1024; Docker's
/// 1048576), never above the shim's own hard limit.
const NOFILE: u64 = 1_048_576;

/// runc's masked paths: unreadable in the container (an empty read-only tmpfs over a directory,
/// `/dev/null` over a file).
pub(crate) const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
    "/sys/fs/selinux",
];

/// runc's read-only paths.
pub(crate) const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's default capability set (no `CAP_SYS_ADMIN`, `CAP_NET_ADMIN`, `CAP_SYS_PTRACE`...)
/// without `CAP_NET_RAW`, as podman's and Kubernetes' restricted profile: raw and packet
/// sockets let a tenant forge any packet on the capsule bridge (a user-space TCP stack needs
/// nothing more). A `ping` that uses ICMP echo sockets (iputils') still works: the capsule's
/// namespace lets every group open them (`net.ipv4.ping_group_range`, set on the sandbox).
pub(crate) const CAPABILITIES: &[Capability] = &[
    Capability::AuditWrite,
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Mknod,
    Capability::NetBindService,
    Capability::Setfcap,
    Capability::Setgid,
    Capability::Setpcap,
    Capability::Setuid,
    Capability::SysChroot,
];

/// Every group of the capsule may open ICMP echo ("ping") sockets, which need no
/// `CAP_NET_RAW` (podman sets the same).
pub(crate) const PING_GROUP_RANGE: (&str, &str) = ("net.ipv4.ping_group_range", "0 2147483647");

/// Syscalls that fail with `EPERM`: kernel, time, module, namespace, mount, tracing and keyring
/// operations a container has no business doing (a subset of Docker's profile, written as a deny
/// list over a default allow).
pub(crate) const DENIED_SYSCALLS: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "syslog",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vhangup",
];

fn seccomp() -> Result<LinuxSeccomp, OciSpecError> {
    let architectures = if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchNative]
    };
    let eperm = libc::EPERM as u32;
    let new_user = libc::CLONE_NEWUSER as u64;
    let syscalls = vec![
        LinuxSyscallBuilder::default()
            .names(
                DENIED_SYSCALLS
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            )
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(eperm)
            .build()?,
        // clone(CLONE_NEWUSER): an unprivileged user namespace would give back every capability
        // inside it. Mask and value are equal, so either reading of value/valueTwo (runc's or
        // libcontainer's) is the same rule.
        LinuxSyscallBuilder::default()
            .names(vec!["clone".to_string()])
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(eperm)
            .args(vec![LinuxSeccompArgBuilder::default()
                .index(0usize)
                .value(new_user)
                .value_two(new_user)
                .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                .build()?])
            .build()?,
        // clone3 passes its flags in memory seccomp cannot read: ENOSYS makes libc fall back to
        // clone, which the rule above checks (Docker does the same).
        LinuxSyscallBuilder::default()
            .names(vec!["clone3".to_string()])
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(libc::ENOSYS as u32)
            .build()?,
    ];
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(architectures)
        .syscalls(syscalls)
        .build()
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, OciSpecError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
}

fn bind(source: &Path, dest: &str, read_only: bool) -> Result<Mount, OciSpecError> {
    let mut options = vec!["rbind", "nosuid", "nodev"];
    options.push(if read_only { "ro" } else { "rw" });
    MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
}

fn namespace(
    typ: LinuxNamespaceType,
    path: Option<PathBuf>,
) -> Result<LinuxNamespace, OciSpecError> {
    let b = LinuxNamespaceBuilder::default().typ(typ);
    match path {
        Some(p) => b.path(p).build(),
        None => b.build(),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn rlimits(host: &Host) -> Result<Vec<oci_spec::runtime::PosixRlimit>, OciSpecError> {
    let nofile = NOFILE.min(host.nofile_hard);
    Ok(vec![PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(nofile)
        .soft(nofile)
        .build()?])
}

fn no_capabilities() -> Result<oci_spec::runtime::LinuxCapabilities, OciSpecError> {
    LinuxCapabilitiesBuilder::default()
        .bounding(HashSet::new())
        .effective(HashSet::new())
        .permitted(HashSet::new())
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
}

fn deny_all_devices() -> Result<oci_spec::runtime::LinuxDeviceCgroup, OciSpecError> {
    // libcgroups then allows its default list (null, zero, full, tty, random, urandom, pts...).
    LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
}

/// The sandbox: `/pause` as PID 1 of new pid, ipc, uts and mount namespaces, in the plan's
/// network namespace (or a new one), read-only rootfs, no capabilities.
pub(crate) fn sandbox_spec(plan: &Plan, host: &Host) -> Result<Spec, OciSpecError> {
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(UserBuilder::default().uid(0u32).gid(0u32).build()?)
        .args(vec!["/pause".to_string()])
        .env(vec![DEFAULT_PATH.to_string()])
        .cwd("/")
        .no_new_privileges(true)
        .capabilities(no_capabilities()?)
        .rlimits(rlimits(host)?)
        .build()?;
    let namespaces = vec![
        namespace(LinuxNamespaceType::Pid, None)?,
        namespace(LinuxNamespaceType::Ipc, None)?,
        namespace(LinuxNamespaceType::Uts, None)?,
        namespace(LinuxNamespaceType::Mount, None)?,
        namespace(LinuxNamespaceType::Network, plan.netns.clone())?,
    ];
    // Net sysctls are the capsule namespace's own: set once, here, for every container.
    let (key, value) = PING_GROUP_RANGE;
    let sysctl = HashMap::from([(key.to_owned(), value.to_owned())]);
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .sysctl(sysctl)
        .cgroups_path(PathBuf::from(plan.cgroup_of(SANDBOX_CGROUP)))
        .resources(
            LinuxResourcesBuilder::default()
                .devices(vec![deny_all_devices()?])
                .build()?,
        )
        .masked_paths(strings(MASKED_PATHS))
        .readonly_paths(strings(READONLY_PATHS))
        .seccomp(seccomp()?)
        .build()?;
    SpecBuilder::default()
        .version("1.0.2")
        .hostname(plan.hostname.clone())
        .root(
            RootBuilder::default()
                .path(plan.sandbox_rootfs.clone())
                .readonly(true)
                .build()?,
        )
        .process(process)
        .mounts(vec![
            mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
            mount(
                "/dev",
                "tmpfs",
                "tmpfs",
                &["nosuid", "noexec", "strictatime", "mode=755", "size=1024k"],
            )?,
        ])
        .linux(linux)
        .build()
}

fn env(c: &ContainerPlan, hostname: &str) -> Vec<String> {
    let mut env = c.env.clone();
    let has = |env: &[String], key: &str| env.iter().any(|e| e.split('=').next() == Some(key));
    if !has(&env, "PATH") {
        env.push(DEFAULT_PATH.to_string());
    }
    if !has(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={hostname}"));
    }
    env
}

/// A container of the capsule: joins the sandbox's pid, ipc, uts and network namespaces
/// (`/proc/<sandbox_pid>/ns/*`), has its own mount namespace and cgroup, sees `etc_dir`'s
/// `hostname`, `hosts` and `resolv.conf` read-only.
pub(crate) fn container_spec(
    plan: &Plan,
    c: &ContainerPlan,
    sandbox_pid: i32,
    etc_dir: &Path,
    host: &Host,
) -> Result<Spec, OciSpecError> {
    let (uid, gid) = c.user.unwrap_or((0, 0));
    let mut caps: HashSet<Capability> = CAPABILITIES.iter().copied().collect();
    if c.net_raw {
        // Asked for by the template and allowed by the API's policy, for this container only.
        caps.insert(Capability::NetRaw);
    }
    // As Docker: a non-root user keeps the bounding set only, so file capabilities and setuid
    // binaries still work inside it, but its processes start without privilege.
    // Every set is given: the builder's default for a missing one is oci-spec's default set
    // (AUDIT_WRITE, KILL, NET_BIND_SERVICE), inheritable and ambient included.
    let (effective, permitted) = if uid == 0 {
        (caps.clone(), caps.clone())
    } else {
        (HashSet::new(), HashSet::new())
    };
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps)
        .effective(effective)
        .permitted(permitted)
        .inheritable(HashSet::new())
        .ambient(HashSet::new());
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(UserBuilder::default().uid(uid).gid(gid).build()?)
        .args(c.args.clone())
        .env(env(c, &plan.hostname))
        .cwd(if c.cwd.is_empty() {
            "/"
        } else {
            c.cwd.as_str()
        })
        .no_new_privileges(true)
        .capabilities(capabilities.build()?)
        .rlimits(rlimits(host)?)
        .build()?;

    let ns = |what: &str| Some(PathBuf::from(format!("/proc/{sandbox_pid}/ns/{what}")));
    let namespaces = vec![
        namespace(LinuxNamespaceType::Pid, ns("pid"))?,
        namespace(LinuxNamespaceType::Ipc, ns("ipc"))?,
        namespace(LinuxNamespaceType::Uts, ns("uts"))?,
        namespace(LinuxNamespaceType::Network, ns("net"))?,
        namespace(LinuxNamespaceType::Mount, None)?,
    ];

    let mut resources = LinuxResourcesBuilder::default().devices(vec![deny_all_devices()?]);
    if let Some(bytes) = c.memory_bytes {
        let limit = i64::try_from(bytes).unwrap_or(i64::MAX);
        let mut memory = LinuxMemoryBuilder::default().limit(limit);
        if host.memsw {
            // memory+swap = memory: the container cannot swap its way past its limit.
            memory = memory.swap(limit);
        }
        resources = resources.memory(memory.build()?);
    }
    if let Some(millis) = c.cpu_millis {
        let period: u64 = 100_000;
        let quota = i64::try_from(millis.saturating_mul(period) / 1000)
            .unwrap_or(i64::MAX)
            .max(1000);
        resources = resources.cpu(
            LinuxCpuBuilder::default()
                .shares((millis.saturating_mul(1024) / 1000).max(2))
                .period(period)
                .quota(quota)
                .build()?,
        );
    }

    let mut readonly = strings(READONLY_PATHS);
    readonly.push("/sys/fs/cgroup".to_string());
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(plan.cgroup_of(&c.name)))
        .resources(resources.build()?)
        .masked_paths(strings(MASKED_PATHS))
        .readonly_paths(readonly)
        .seccomp(seccomp()?)
        .build()?;

    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
    ];
    mounts.extend(cgroup_mounts(&plan.cgroup_of(&c.name), host)?);
    for (file, dest) in [
        ("hostname", "/etc/hostname"),
        ("hosts", "/etc/hosts"),
        ("resolv.conf", "/etc/resolv.conf"),
    ] {
        mounts.push(bind(&etc_dir.join(file), dest, true)?);
    }
    for m in &c.mounts {
        mounts.push(bind(&m.source, &m.destination, m.read_only)?);
    }

    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(c.rootfs.clone())
                .readonly(false)
                .build()?,
        )
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()
}

/// cgroupfs as the container sees it: its own cgroup of each controller hierarchy, bound
/// read-only at the hierarchy's usual place (on cgroup v1, under a tmpfs `/sys/fs/cgroup` that
/// `readonlyPaths` makes read-only too).
///
/// Not libcontainer's `cgroup` mount type: on v1 it binds the hierarchies read-write whatever
/// the options say, and it looks the container's parent up by the pid the init process has in
/// its own pid namespace, in the host's `/proc`; in a joined pid namespace that pid is some host
/// process or none, and the mount fails when there is none.
fn cgroup_mounts(cgroup: &str, host: &Host) -> Result<Vec<Mount>, OciSpecError> {
    let rel = cgroup.trim_start_matches('/');
    let root = Path::new("/sys/fs/cgroup");
    if host.cgroup_mounts.iter().any(|m| m == root) {
        return Ok(vec![bind_ro_cgroup(&root.join(rel), "/sys/fs/cgroup")?]);
    }
    let mut out = vec![mount(
        "/sys/fs/cgroup",
        "tmpfs",
        "tmpfs",
        &["nosuid", "noexec", "nodev", "mode=755", "size=64k"],
    )?];
    for m in &host.cgroup_mounts {
        if let Ok(name) = m.strip_prefix(root) {
            let dest = root.join(name);
            out.push(bind_ro_cgroup(&m.join(rel), &dest.to_string_lossy())?);
        }
    }
    Ok(out)
}

fn bind_ro_cgroup(source: &Path, dest: &str) -> Result<Mount, OciSpecError> {
    MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(source)
        .options(strings(&["rbind", "ro", "nosuid", "nodev", "noexec"]))
        .build()
}

/// The `/etc/hosts` of a capsule.
pub(crate) fn hosts_file(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shim::plan::{MountPlan, RestartPolicy};

    fn host() -> Host {
        Host {
            nofile_hard: 20_000,
            cgroup_mounts: vec!["/sys/fs/cgroup/memory".into(), "/sys/fs/cgroup/cpu".into()],
            memsw: true,
        }
    }

    fn plan() -> Plan {
        Plan {
            uuid: uuid::Uuid::nil(),
            hostname: "web".into(),
            netns: None,
            cgroup_parent: "/capsule/x".into(),
            sandbox_rootfs: "/s".into(),
            restart_policy: RestartPolicy::Never,
            max_retries: 0,
            init_containers: vec![],
            containers: vec![ContainerPlan {
                name: "a".into(),
                uuid: uuid::Uuid::nil(),
                rootfs: "/r".into(),
                args: vec!["sh".into()],
                env: vec!["FOO=1".into()],
                cwd: String::new(),
                user: None,
                memory_bytes: Some(16 << 20),
                cpu_millis: Some(250),
                mounts: vec![MountPlan {
                    source: "/data".into(),
                    destination: "/data".into(),
                    read_only: true,
                }],
                net_raw: false,
                stop_signal: None,
            }],
            limits: Default::default(),
        }
    }

    #[test]
    fn containers_join_the_sandbox_and_are_confined() {
        let p = plan();
        let s = container_spec(&p, &p.containers[0], 42, Path::new("/c/etc"), &host()).unwrap();
        let linux = s.linux().as_ref().unwrap();
        let ns = linux.namespaces().as_ref().unwrap();
        let path_of = |t| ns.iter().find(|n| n.typ() == t).unwrap().path().clone();
        assert_eq!(
            path_of(LinuxNamespaceType::Pid),
            Some("/proc/42/ns/pid".into())
        );
        assert_eq!(
            path_of(LinuxNamespaceType::Network),
            Some("/proc/42/ns/net".into())
        );
        assert_eq!(path_of(LinuxNamespaceType::Mount), None);
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/capsule/x/a"))
        );

        let masked = linux.masked_paths().as_ref().unwrap();
        assert!(masked.contains(&"/proc/kcore".to_string()));
        let ro = linux.readonly_paths().as_ref().unwrap();
        for p in ["/proc/sys", "/proc/sysrq-trigger", "/sys/fs/cgroup"] {
            assert!(ro.contains(&p.to_string()), "{p}");
        }
        let proc_ = s.process().as_ref().unwrap();
        assert_eq!(proc_.no_new_privileges(), Some(true));
        let caps = proc_.capabilities().as_ref().unwrap();
        assert!(!caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin));
        assert!(caps
            .effective()
            .as_ref()
            .unwrap()
            .contains(&Capability::Chown));
        assert!(caps.inheritable().as_ref().unwrap().is_empty());
        assert!(caps.ambient().as_ref().unwrap().is_empty());
        let rl = &proc_.rlimits().as_ref().unwrap()[0];
        assert_eq!((rl.soft(), rl.hard()), (20_000, 20_000));
        let env = proc_.env().as_ref().unwrap();
        assert!(env.iter().any(|e| e.starts_with("PATH=")));
        assert!(env.contains(&"HOSTNAME=web".to_string()));

        let res = linux.resources().as_ref().unwrap();
        let mem = res.memory().as_ref().unwrap();
        assert_eq!((mem.limit(), mem.swap()), (Some(16 << 20), Some(16 << 20)));
        let cpu = res.cpu().as_ref().unwrap();
        assert_eq!(
            (cpu.shares(), cpu.quota(), cpu.period()),
            (Some(256), Some(25_000), Some(100_000))
        );

        let seccomp = linux.seccomp().as_ref().unwrap();
        let denied = seccomp.syscalls().as_ref().unwrap()[0].names();
        for name in [
            "mount",
            "umount2",
            "pivot_root",
            "setns",
            "unshare",
            "ptrace",
            "bpf",
        ] {
            assert!(denied.contains(&name.to_string()), "{name}");
        }

        let mounts = s.mounts().as_ref().unwrap();
        let memory = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/sys/fs/cgroup/memory"))
            .unwrap();
        assert_eq!(
            memory.source().as_deref(),
            Some(Path::new("/sys/fs/cgroup/memory/capsule/x/a"))
        );
        assert!(memory
            .options()
            .as_ref()
            .unwrap()
            .contains(&"ro".to_string()));
        assert!(mounts.iter().all(|m| m.typ().as_deref() != Some("cgroup")));
        let sys = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/sys"))
            .unwrap();
        assert!(sys.options().as_ref().unwrap().contains(&"ro".to_string()));
        let data = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/data"))
            .unwrap();
        assert!(data.options().as_ref().unwrap().contains(&"ro".to_string()));
        assert!(mounts
            .iter()
            .any(|m| m.destination() == Path::new("/etc/resolv.conf")));
    }

    #[test]
    fn net_raw_only_for_the_container_that_has_it() {
        let mut p = plan();
        let caps = |p: &Plan| {
            let s = container_spec(p, &p.containers[0], 42, Path::new("/c/etc"), &host()).unwrap();
            s.process()
                .as_ref()
                .unwrap()
                .capabilities()
                .clone()
                .unwrap()
        };
        let default = caps(&p);
        for set in [default.bounding(), default.effective(), default.permitted()] {
            assert!(!set.as_ref().unwrap().contains(&Capability::NetRaw));
        }
        p.containers[0].net_raw = true;
        let raw = caps(&p);
        for set in [raw.bounding(), raw.effective(), raw.permitted()] {
            assert!(set.as_ref().unwrap().contains(&Capability::NetRaw));
        }
        assert!(raw.ambient().as_ref().unwrap().is_empty());
        assert_eq!(
            raw.bounding().as_ref().unwrap().len(),
            CAPABILITIES.len() + 1,
            "NET_RAW and nothing else"
        );
        let sandbox = sandbox_spec(&p, &host()).unwrap();
        let sandbox = sandbox.process().as_ref().unwrap().capabilities().clone();
        assert!(sandbox.unwrap().bounding().as_ref().unwrap().is_empty());
    }

    #[test]
    fn non_root_users_start_without_capabilities() {
        let mut p = plan();
        p.containers[0].user = Some((1000, 1000));
        let s = container_spec(&p, &p.containers[0], 42, Path::new("/c/etc"), &host()).unwrap();
        let caps = s
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .clone()
            .unwrap();
        assert!(caps.effective().as_ref().unwrap().is_empty());
        assert!(caps.permitted().as_ref().unwrap().is_empty());
        assert!(caps.ambient().as_ref().unwrap().is_empty());
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::Chown));
    }

    #[test]
    fn the_sandbox_gets_new_namespaces_or_the_planned_netns() {
        let mut p = plan();
        let s = sandbox_spec(&p, &host()).unwrap();
        let ns = s.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(ns.iter().all(|n| n.path().is_none()));
        assert_eq!(ns.len(), 5);
        assert!(s.root().as_ref().unwrap().readonly().unwrap());
        assert_eq!(s.hostname().as_deref(), Some("web"));

        p.netns = Some("/run/netns/capsule-x".into());
        let s = sandbox_spec(&p, &host()).unwrap();
        let ns = s.linux().as_ref().unwrap().namespaces().clone().unwrap();
        let net = ns
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .unwrap();
        assert_eq!(
            net.path().as_deref(),
            Some(Path::new("/run/netns/capsule-x"))
        );
        assert_eq!(
            s.linux().as_ref().unwrap().cgroups_path().as_deref(),
            Some(Path::new("/capsule/x/_sandbox"))
        );
    }
}
