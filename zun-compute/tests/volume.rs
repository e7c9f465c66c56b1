//! The loop-device volume driver against the real kernel, as root: real sparse files, real
//! mkfs.ext4, real loop devices and mounts.
//!
//! Each test works in a directory of its own, `/tmp/capsule-voltest-<pid>-<uuid>`, and holds a
//! [`World`] guard whose drop unmounts everything under that directory, detaches every loop
//! device backed by a file in it and removes it, even when the test panics. `World::finish`,
//! at the end of each test, checks that the driver itself left nothing mounted and no loop
//! device behind. Directories of test processes that no longer exist (killed runs) are swept
//! at the start.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use test_support::run;
use tokio::io::AsyncBufReadExt;
use uuid::Uuid;
use zun_compute::volume::{LoopVolumes, VolumeConfig, VolumeDriver, VolumeError};

const MIB: u64 = 1 << 20;
const PREFIX: &str = "capsule-voltest-";

/// A mount of this process's namespace: (mount point, per-mount options, fstype). Paths under
/// the tests' directories have no characters the kernel escapes.
fn mounts() -> Vec<(PathBuf, String, String)> {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    info.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            Some((
                PathBuf::from(fields.get(4)?),
                fields.get(5)?.to_string(),
                fields.get(dash + 1)?.to_string(),
            ))
        })
        .collect()
}

/// Mount points at or under `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = mounts()
        .into_iter()
        .map(|(p, _, _)| p)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points
}

/// Loop devices whose backing file is under `dir`, from `losetup -a` (`/dev/loopN: [dev]:ino
/// (/backing/file)`).
fn loops_under(dir: &Path) -> Vec<String> {
    let all = run("losetup", &["-a"]).unwrap_or_else(|e| panic!("{e}"));
    let needle = format!("({}/", dir.display());
    all.lines()
        .filter(|l| l.contains(&needle))
        .filter_map(|l| l.split_once(':').map(|(dev, _)| dev.to_owned()))
        .collect()
}

/// `losetup -j file`: the loop devices backed by `file`.
fn loops_of(file: &Path) -> String {
    run("losetup", &["-j", &file.to_string_lossy()]).unwrap_or_else(|e| panic!("{e}"))
}

/// Unmounts everything under `dir`, detaches its loop devices and removes it; best effort.
fn clean(dir: &Path) {
    for point in mounts_under(dir) {
        let point = point.to_string_lossy().into_owned();
        let unmounted = (0..10).any(|_| {
            run("umount", &[&point]).is_ok() || {
                std::thread::sleep(Duration::from_millis(50));
                false
            }
        });
        if !unmounted {
            let _ = run("umount", &["-l", &point]);
        }
    }
    for dev in loops_under(dir) {
        let _ = run("losetup", &["-d", &dev]);
    }
    let _ = fs::remove_dir_all(dir);
}

/// Removes the directories of test processes that no longer run.
fn sweep_stale() {
    let Ok(entries) = fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            clean(&entry.path());
        }
    }
}

/// One test's directory and driver; cleans the kernel up on drop.
struct World {
    dir: PathBuf,
    volumes: LoopVolumes,
}

impl World {
    fn new() -> Self {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the volume tests need root (loop devices, mkfs, mount); run them as root"
        );
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        sweep_stale();
        let dir = PathBuf::from(format!(
            "/tmp/{PREFIX}{}-{}",
            std::process::id(),
            Uuid::new_v4()
        ));
        fs::create_dir(&dir).expect("create the test directory");
        let volumes = LoopVolumes::new(VolumeConfig::default(), &dir).expect("LoopVolumes::new");
        assert_eq!(volumes.dir(), dir.join("volumes"));
        assert!(dir.join("volumes/mnt").is_dir());
        Self { dir, volumes }
    }

    /// Checks that nothing under the test's directory is mounted or backs a loop device.
    fn finish(self) {
        assert_eq!(
            mounts_under(&self.dir),
            Vec::<PathBuf>::new(),
            "left mounted"
        );
        assert_eq!(
            loops_under(&self.dir),
            Vec::<String>::new(),
            "loop devices left"
        );
    }
}

impl Drop for World {
    fn drop(&mut self) {
        clean(&self.dir);
    }
}

/// The mounts at `point`: (options, fstype) of each.
fn mounts_at(point: &Path) -> Vec<(String, String)> {
    mounts()
        .into_iter()
        .filter(|(p, _, _)| p == point)
        .map(|(_, opts, fstype)| (opts, fstype))
        .collect()
}

#[tokio::test]
async fn create_is_sparse_listed_and_idempotent() {
    let w = World::new();
    let v = &w.volumes;
    let id = Uuid::new_v4();
    let size = 16 * MIB;
    v.create(id, size).await.expect("create");
    let file = v.file(id);
    assert_eq!(file, w.dir.join(format!("volumes/{id}.img")));
    let meta = fs::metadata(&file).expect("the volume file exists");
    assert_eq!(meta.len(), size);
    assert!(
        meta.blocks() * 512 < size / 2,
        "not sparse: {} bytes allocated of {size}",
        meta.blocks() * 512
    );
    assert!(!v.mount_point(id).exists(), "create must not attach");
    assert!(!v.is_attached(id).unwrap());
    assert_eq!(v.list().unwrap(), [id]);

    // Data written to the volume survives a second create.
    let mount_point = v.attach(id).await.expect("attach");
    fs::write(mount_point.join("keep.txt"), b"kept").unwrap();
    v.detach(id).await.expect("detach");
    v.create(id, size).await.expect("create again");
    let mount_point = v.attach(id).await.expect("attach again");
    assert_eq!(fs::read(mount_point.join("keep.txt")).unwrap(), b"kept");
    v.detach(id).await.expect("detach again");

    // Only finished volumes with names the driver writes are listed.
    let other = Uuid::new_v4();
    v.create(other, 16 * MIB)
        .await
        .expect("create a second volume");
    fs::write(v.dir().join("junk.img"), b"").unwrap();
    fs::write(
        v.dir().join(format!("{}.img", Uuid::new_v4().simple())),
        b"",
    )
    .unwrap();
    fs::write(v.dir().join(format!(".{}.img.tmp", Uuid::new_v4())), b"").unwrap();
    let mut both = vec![id, other];
    both.sort();
    assert_eq!(v.list().unwrap(), both);

    // Too small is refused and leaves nothing.
    let small = Uuid::new_v4();
    match v.create(small, 4 * MIB).await {
        Err(VolumeError::TooSmall { id: got, .. }) => assert_eq!(got, small),
        other => panic!("4 MiB volume: {other:?}"),
    }
    assert!(!v.file(small).exists());

    let (total, available) = v.capacity().expect("capacity");
    assert!(
        total > 0 && available > 0 && available <= total,
        "{total} {available}"
    );
    w.finish();
}

#[tokio::test]
async fn attach_write_detach_reattach_keeps_data() {
    let w = World::new();
    let v = &w.volumes;
    let id = Uuid::new_v4();
    v.create(id, 16 * MIB).await.expect("create");
    let mount_point = v.attach(id).await.expect("attach");
    assert_eq!(mount_point, v.mount_point(id));
    assert_eq!(mount_point, w.dir.join(format!("volumes/mnt/{id}")));
    let at = mounts_at(&mount_point);
    assert_eq!(at.len(), 1, "{at:?}");
    let (opts, fstype) = &at[0];
    assert_eq!(fstype, "ext4");
    for opt in ["rw", "nodev", "nosuid", "noatime"] {
        assert!(opts.split(',').any(|o| o == opt), "{opt} missing in {opts}");
    }
    assert!(v.is_attached(id).unwrap());
    assert!(
        !loops_of(&v.file(id)).trim().is_empty(),
        "no loop device while attached"
    );

    let mut f = File::create(mount_point.join("hello.txt")).unwrap();
    f.write_all(b"hello, volume").unwrap();
    f.sync_all().unwrap();
    drop(f);

    // Attaching again changes nothing.
    assert_eq!(v.attach(id).await.expect("attach again"), mount_point);
    assert_eq!(mounts_at(&mount_point).len(), 1);

    v.detach(id).await.expect("detach");
    assert!(!v.is_attached(id).unwrap());
    assert!(mounts_at(&mount_point).is_empty());
    assert_eq!(
        loops_of(&v.file(id)),
        "",
        "a loop device still backs the file"
    );
    assert!(!mount_point.exists(), "mount point left");
    v.detach(id).await.expect("detach again");

    let mount_point = v.attach(id).await.expect("reattach");
    let mut content = String::new();
    File::open(mount_point.join("hello.txt"))
        .and_then(|mut f| f.read_to_string(&mut content))
        .expect("the file survives detach and attach");
    assert_eq!(content, "hello, volume");
    v.detach(id).await.expect("detach at the end");
    w.finish();
}

#[tokio::test]
async fn full_volume_reports_enospc() {
    let w = World::new();
    let v = &w.volumes;
    let id = Uuid::new_v4();
    v.create(id, 16 * MIB).await.expect("create");
    let mount_point = v.attach(id).await.expect("attach");
    let mut f = File::create(mount_point.join("big")).unwrap();
    let chunk = vec![0xa5u8; MIB as usize];
    let mut written = 0;
    let error = loop {
        if let Err(e) = f.write_all(&chunk) {
            break e;
        }
        written += MIB;
        if written >= 32 * MIB {
            // Delayed allocation may report it on flush only.
            break f.sync_all().expect_err("32 MiB fit into a 16 MiB volume");
        }
    };
    assert_eq!(
        error.raw_os_error(),
        Some(libc::ENOSPC),
        "after {written} bytes: {error}"
    );
    assert!(written < 16 * MIB);
    drop(f);
    v.detach(id).await.expect("detach");
    v.delete(id).await.expect("delete");
    w.finish();
}

#[tokio::test]
async fn delete_attached_volume_removes_everything() {
    let w = World::new();
    let v = &w.volumes;
    let id = Uuid::new_v4();
    v.create(id, 16 * MIB).await.expect("create");
    let mount_point = v.attach(id).await.expect("attach");
    fs::write(mount_point.join("data"), b"doomed").unwrap();
    let file = v.file(id);
    assert!(!loops_of(&file).trim().is_empty());

    v.delete(id).await.expect("delete an attached volume");
    assert!(mounts_at(&mount_point).is_empty(), "still mounted");
    assert!(!v.is_attached(id).unwrap());
    assert!(!file.exists(), "file left");
    assert!(!mount_point.exists(), "mount point left");
    assert_eq!(loops_under(&w.dir), Vec::<String>::new());
    assert_eq!(v.list().unwrap(), Vec::<Uuid>::new());

    v.delete(id).await.expect("delete again");
    let unknown = Uuid::new_v4();
    v.delete(unknown).await.expect("delete unknown");
    v.detach(unknown).await.expect("detach unknown");
    assert!(!v.is_attached(unknown).unwrap());
    match v.attach(unknown).await {
        Err(e @ VolumeError::NotFound { .. }) => {
            let VolumeError::NotFound { id: got, path } = &e else {
                unreachable!()
            };
            assert_eq!(*got, unknown);
            assert_eq!(*path, v.file(unknown));
            assert!(e.to_string().contains(&unknown.to_string()), "{e}");
        }
        other => panic!("attach of an unknown volume: {other:?}"),
    }
    assert!(!v.mount_point(unknown).exists());
    w.finish();
}

#[tokio::test]
async fn leftover_temp_file_is_replaced() {
    let w = World::new();
    let v = &w.volumes;
    let id = Uuid::new_v4();
    // An interrupted create: a temp file that mkfs never finished.
    let tmp = v.dir().join(format!(".{id}.img.tmp"));
    fs::write(&tmp, vec![0x5a; 4096]).unwrap();
    assert_eq!(
        v.list().unwrap(),
        Vec::<Uuid>::new(),
        "a half-made volume is not a volume"
    );
    match v.attach(id).await {
        Err(VolumeError::NotFound { .. }) => {}
        other => panic!("attach of a half-made volume: {other:?}"),
    }

    v.create(id, 16 * MIB)
        .await
        .expect("create over the leftover");
    assert!(!tmp.exists(), "temp file left");
    assert_eq!(fs::metadata(v.file(id)).unwrap().len(), 16 * MIB);
    assert_eq!(v.list().unwrap(), [id]);
    let mount_point = v.attach(id).await.expect("attach the new volume");
    assert_eq!(mounts_at(&mount_point)[0].1, "ext4");
    v.delete(id).await.expect("delete");
    assert_eq!(
        fs::read_dir(v.dir()).unwrap().count(),
        1,
        "only mnt/ is left"
    );
    w.finish();
}

#[tokio::test]
async fn busy_volume_refuses_to_detach() {
    let w = World::new();
    let v = &w.volumes;
    let id = Uuid::new_v4();
    v.create(id, 16 * MIB).await.expect("create");
    let mount_point = v.attach(id).await.expect("attach");

    // A process whose working directory is inside the volume.
    let mut sleeper = tokio::process::Command::new("sleep")
        .arg("60")
        .current_dir(&mount_point)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sleep");
    let e = v
        .detach(id)
        .await
        .expect_err("detach while a process is inside");
    match &e {
        VolumeError::Busy { id: got, path, .. } => {
            assert_eq!(*got, id);
            assert_eq!(*path, mount_point);
        }
        other => panic!("detach while busy: {other:?}"),
    }
    assert!(e.to_string().contains(&id.to_string()), "{e}");
    assert!(
        v.is_attached(id).unwrap(),
        "a refused detach must leave it attached"
    );
    sleeper.kill().await.expect("kill sleep");
    v.detach(id)
        .await
        .expect("detach after the process is gone");
    assert!(!v.is_attached(id).unwrap());

    // An open file held by this process.
    let mount_point = v.attach(id).await.expect("attach again");
    let held = File::create(mount_point.join("open")).unwrap();
    match v.detach(id).await {
        Err(VolumeError::Busy { id: got, .. }) => assert_eq!(got, id),
        other => panic!("detach with an open file: {other:?}"),
    }
    // delete refuses too, and keeps the volume.
    match v.delete(id).await {
        Err(VolumeError::Busy { .. }) => {}
        other => panic!("delete with an open file: {other:?}"),
    }
    assert!(v.file(id).exists());
    drop(held);
    v.detach(id).await.expect("detach after closing the file");
    assert_eq!(loops_of(&v.file(id)), "");
    w.finish();
}

#[tokio::test]
async fn volume_mounted_in_another_namespace_holds_its_loop_device() {
    let w = World::new();
    let v = &w.volumes;
    let id = Uuid::new_v4();
    v.create(id, 16 * MIB).await.expect("create");
    v.attach(id).await.expect("attach");

    // A private mount namespace with a copy of the mount, as a container's has. It drops its
    // copies of the other tests' volumes at once, so that it holds this test's volume only.
    let point = v.mount_point(id).to_string_lossy().into_owned();
    let script = format!(
        "cut -d' ' -f5 /proc/self/mountinfo | grep '^/tmp/{PREFIX}' | grep -vxF \"$1\" \
         | while read -r p; do umount -l \"$p\"; done; echo ready; exec sleep 60"
    );
    let mut holder = tokio::process::Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
            &point,
        ])
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn unshare");
    let mut ready = String::new();
    let stdout = holder.stdout.take().expect("stdout");
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::BufReader::new(stdout).read_line(&mut ready),
    )
    .await
    .expect("the namespace is ready in time")
    .expect("read from unshare");
    assert_eq!(ready.trim(), "ready");
    let pid = holder.id().expect("unshare pid");
    let theirs = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert!(
        theirs.contains(&point),
        "the namespace has no copy of the mount"
    );

    match v.detach(id).await {
        Err(e @ VolumeError::LoopInUse { .. }) => {
            assert!(e.to_string().contains(&id.to_string()), "{e}");
        }
        other => panic!("detach while mounted in another namespace: {other:?}"),
    }
    assert!(!v.is_attached(id).unwrap(), "unmounted here all the same");
    holder.kill().await.expect("kill the namespace's process");
    v.detach(id)
        .await
        .expect("detach once the namespace is gone");
    assert_eq!(loops_of(&v.file(id)), "");
    assert!(!v.mount_point(id).exists());
    w.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_operations_serialize() {
    let w = World::new();
    let v = &w.volumes;
    let id = Uuid::new_v4();

    // Creates of one volume race: one makes it, the others find it.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let v = v.clone();
        tasks.spawn(async move { v.create(id, 16 * MIB).await });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().expect("concurrent create");
    }
    // Creates of different volumes run side by side.
    let others: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    for &other in &others {
        let v = v.clone();
        tasks.spawn(async move { v.create(other, 16 * MIB).await });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().expect("create of another volume");
    }
    let mut all = others.clone();
    all.push(id);
    all.sort();
    assert_eq!(v.list().unwrap(), all);

    let mut attaches = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let v = v.clone();
        attaches.spawn(async move { v.attach(id).await });
    }
    while let Some(r) = attaches.join_next().await {
        assert_eq!(r.unwrap().expect("concurrent attach"), v.mount_point(id));
    }
    assert_eq!(mounts_at(&v.mount_point(id)).len(), 1, "mounted once");

    for _ in 0..8 {
        let v = v.clone();
        tasks.spawn(async move { v.detach(id).await });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().expect("concurrent detach");
    }
    assert!(!v.is_attached(id).unwrap());
    for other in all {
        v.delete(other).await.expect("delete");
    }
    assert_eq!(v.list().unwrap(), Vec::<Uuid>::new());
    w.finish();
}

#[test]
fn missing_tool_is_a_config_error() {
    let dir = std::env::temp_dir().join(format!("{PREFIX}cfg-{}", Uuid::new_v4()));
    for (cfg, bad) in [
        (
            VolumeConfig {
                mkfs: PathBuf::from("/nonexistent/mkfs.ext4"),
                ..VolumeConfig::default()
            },
            "/nonexistent/mkfs.ext4",
        ),
        (
            VolumeConfig {
                losetup: PathBuf::from("no-such-losetup"),
                ..VolumeConfig::default()
            },
            "no-such-losetup",
        ),
    ] {
        match LoopVolumes::new(cfg, &dir) {
            Err(e @ VolumeError::Config { .. }) => {
                assert!(e.to_string().contains(bad), "{e}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    // Nothing was created for a configuration that is refused.
    match fs::metadata(&dir) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound),
        Ok(_) => {
            let _ = fs::remove_dir_all(&dir);
            panic!("{} created for a refused configuration", dir.display());
        }
    }
}
