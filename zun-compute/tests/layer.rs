//! The writable-layer driver against the real kernel, as root: a sparse file, mkfs.ext4, a
//! loop device and a mount per capsule; a write past the layer's size is `ENOSPC`; removal
//! leaves nothing. Prints what a layer costs a create (make + mount, and removal). A guard
//! unmounts and detaches whatever the test left under its directory, even when it fails.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use test_support::run;
use uuid::Uuid;
use zun_compute::layer::{LayerDriver, LoopLayers};
use zun_compute::volume::VolumeConfig;

/// A scratch state directory, cleaned of mounts, loop devices and files when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn leftovers(&self) -> Vec<String> {
        let needle = self.0.to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let loops = run("losetup", &["-a"]).unwrap_or_default();
        mounts
            .lines()
            .chain(loops.lines())
            .filter(|l| l.contains(&needle))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let needle = self.0.to_string_lossy().into_owned();
        for m in test_support::mount_points() {
            if m.starts_with(&self.0) {
                let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        for l in run("losetup", &["-a"]).unwrap_or_default().lines() {
            if l.contains(&needle) {
                if let Some((dev, _)) = l.split_once(':') {
                    let _ = run("losetup", &["-d", dev]);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test]
async fn a_layer_bounds_its_writes_and_goes_whole() {
    assert!(nix::unistd::geteuid().is_root(), "layers need root");
    let scratch =
        Scratch(std::env::temp_dir().join(format!("capsule-layertest-{}", Uuid::new_v4())));
    std::fs::create_dir_all(&scratch.0).unwrap();
    let layers = LoopLayers::new(&VolumeConfig::default(), &scratch.0).unwrap();
    let id = Uuid::new_v4();
    let point = layers.create(id, 32 << 20).await.unwrap();
    assert_eq!(point, layers.mount_point(id));
    // Idempotent: a second create finds it mounted.
    assert_eq!(layers.create(id, 32 << 20).await.unwrap(), point);
    let mut f = std::fs::File::create(point.join("fill")).unwrap();
    let chunk = vec![7u8; 1 << 20];
    let err = (0..64)
        .find_map(|_| f.write_all(&chunk).and_then(|()| f.sync_all()).err())
        .expect("64 MiB fit in a 32 MiB layer");
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    drop(f);
    layers.remove(id).await.unwrap();
    layers.remove(id).await.unwrap();
    assert!(!layers.file(id).exists(), "the layer's file is left");
    assert_eq!(scratch.leftovers(), Vec::<String>::new());

    // What a layer costs a create (the default size: 1 GiB, sparse) and a delete.
    let (mut made, mut gone) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let id = Uuid::new_v4();
        let t = Instant::now();
        layers.create(id, 1 << 30).await.unwrap();
        made.push(t.elapsed());
        let t = Instant::now();
        layers.remove(id).await.unwrap();
        gone.push(t.elapsed());
    }
    eprintln!(
        "writable layer of 1 GiB: create (mkfs.ext4 + loop + mount) median {:?}, remove median {:?}; all: {made:?} / {gone:?}",
        median(made.clone()),
        median(gone.clone())
    );
    assert_eq!(scratch.leftovers(), Vec::<String>::new());
}
