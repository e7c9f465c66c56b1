//! Address and host-port bookkeeping for the one host network: one small JSON file per capsule
//! under `<config_dir>/ipam/<network>/`, every change made under an exclusive `flock`, so
//! concurrent setups (threads or processes) never share an address or a host port and an agent
//! restart never reuses a live one. Blocking: call it from `spawn_blocking`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Protocol;

/// An IPv4 subnet in CIDR form, with its host bits clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ipv4Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Subnet {
    /// The network address.
    pub(crate) fn addr(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub(crate) fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// The broadcast address (all host bits set).
    pub(crate) fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    /// The first usable host address (the default gateway).
    pub(crate) fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Whether `ip` is a usable host address of this subnet (not the network or broadcast).
    pub(crate) fn is_host(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
            && ip != self.network
            && ip != self.broadcast()
    }
}

impl std::fmt::Display for Ipv4Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Ipv4Subnet {
    type Err = String;

    /// Parses `a.b.c.d/n` with 8 <= n <= 30 and no host bits set.
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("subnet {s:?} is not in CIDR form a.b.c.d/n"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("subnet {s:?}: {addr:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("subnet {s:?}: {prefix:?} is not a prefix length"))?;
        if !(8..=30).contains(&prefix) {
            return Err(format!("subnet {s:?}: prefix length must be 8 to 30"));
        }
        let net = Self {
            network: addr,
            prefix,
        };
        if u32::from(addr) & !net.mask() != 0 {
            return Err(format!("subnet {s:?} has host bits set"));
        }
        Ok(net)
    }
}

/// A host port as claimed: protocol and number (the host address is ignored on purpose: a claim
/// on one address blocks the port on all, which is the conservative reading).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct PortClaim {
    /// Protocol.
    pub protocol: Protocol,
    /// Host port.
    pub port: u16,
}

/// What one capsule holds: `capsule-<uuid>.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Lease {
    ip: Ipv4Addr,
    #[serde(default)]
    ports: Vec<PortClaim>,
}

/// Why an allocation or a release failed.
#[derive(Debug)]
pub(crate) enum IpamFailure {
    /// A file operation failed.
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Every host address is leased.
    Exhausted,
    /// Another capsule holds the host port.
    PortClaimed {
        /// The port.
        claim: PortClaim,
        /// The capsule holding it.
        holder: Uuid,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> IpamFailure + 'a {
    move |source| IpamFailure::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// The lease store of one network.
#[derive(Clone, Debug)]
pub(crate) struct Ipam {
    dir: PathBuf,
    subnet: Ipv4Subnet,
    gateway: Ipv4Addr,
}

const LOCK_FILE: &str = ".lock";
const LAST_FILE: &str = ".last";
const LEASE_PREFIX: &str = "capsule-";
const LEASE_SUFFIX: &str = ".json";

impl Ipam {
    /// The store in `dir` for `subnet`, never handing out `gateway`.
    pub(crate) fn new(dir: PathBuf, subnet: Ipv4Subnet, gateway: Ipv4Addr) -> Self {
        Self {
            dir,
            subnet,
            gateway,
        }
    }

    fn lease_path(&self, capsule: Uuid) -> PathBuf {
        self.dir
            .join(format!("{LEASE_PREFIX}{capsule}{LEASE_SUFFIX}"))
    }

    fn lock(&self) -> Result<Flock<File>, IpamFailure> {
        fs::create_dir_all(&self.dir).map_err(io_err("create", &self.dir))?;
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| IpamFailure::Io {
            action: "lock",
            path,
            source: errno.into(),
        })
    }

    /// Every lease on disk. A lease file that cannot be parsed still blocks nothing, but is
    /// kept (and logged) for a human to look at.
    fn leases(&self) -> Result<HashMap<Uuid, Lease>, IpamFailure> {
        let mut out = HashMap::new();
        let entries = fs::read_dir(&self.dir).map_err(io_err("list", &self.dir))?;
        for entry in entries {
            let entry = entry.map_err(io_err("list", &self.dir))?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_prefix(LEASE_PREFIX))
                .and_then(|n| n.strip_suffix(LEASE_SUFFIX))
                .and_then(|n| Uuid::parse_str(n).ok())
            else {
                continue;
            };
            let path = entry.path();
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("read", &path)(e)),
            };
            match serde_json::from_slice::<Lease>(&bytes) {
                Ok(lease) => {
                    out.insert(id, lease);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable lease ignored")
                }
            }
        }
        Ok(out)
    }

    /// Leases an address and claims `ports` for `capsule`; a capsule that already holds a lease
    /// keeps its address (its port claims are replaced). Returns the address.
    pub(crate) fn allocate(
        &self,
        capsule: Uuid,
        ports: &[PortClaim],
    ) -> Result<Ipv4Addr, IpamFailure> {
        let _lock = self.lock()?;
        let leases = self.leases()?;
        let mut wanted = HashSet::new();
        for claim in ports {
            if !wanted.insert(*claim) {
                continue;
            }
            if let Some((holder, _)) = leases
                .iter()
                .find(|(id, l)| **id != capsule && l.ports.contains(claim))
            {
                return Err(IpamFailure::PortClaimed {
                    claim: *claim,
                    holder: *holder,
                });
            }
        }
        let ip = match leases.get(&capsule) {
            Some(own) if self.subnet.is_host(own.ip) && own.ip != self.gateway => own.ip,
            _ => {
                let used: HashSet<Ipv4Addr> = leases
                    .iter()
                    .filter(|(id, _)| **id != capsule)
                    .map(|(_, l)| l.ip)
                    .collect();
                let ip = self.next_free(&used)?;
                let last = self.dir.join(LAST_FILE);
                fs::write(&last, ip.to_string()).map_err(io_err("write", &last))?;
                ip
            }
        };
        let lease = Lease {
            ip,
            ports: ports.to_vec(),
        };
        let path = self.lease_path(capsule);
        write_atomic(&path, &serde_json::to_vec(&lease).unwrap_or_default())
            .map_err(io_err("write", &path))?;
        Ok(ip)
    }

    /// The next free host address after the last one handed out (round robin, like CNI's
    /// host-local, so a released address is not reused at once).
    fn next_free(&self, used: &HashSet<Ipv4Addr>) -> Result<Ipv4Addr, IpamFailure> {
        let first = u32::from(self.subnet.first_host());
        let last = u32::from(self.subnet.broadcast()) - 1;
        let count = last - first + 1;
        let start = fs::read_to_string(self.dir.join(LAST_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<Ipv4Addr>().ok())
            .map(u32::from)
            .filter(|a| (first..=last).contains(a))
            .map_or(first, |a| if a == last { first } else { a + 1 });
        (0..count)
            .map(|i| Ipv4Addr::from(first + (start - first + i) % count))
            .find(|ip| *ip != self.gateway && !used.contains(ip))
            .ok_or(IpamFailure::Exhausted)
    }

    /// Every capsule's leased address.
    pub(crate) fn addresses(&self) -> Result<BTreeMap<Uuid, Ipv4Addr>, IpamFailure> {
        if !self.dir.exists() {
            return Ok(BTreeMap::new());
        }
        Ok(self
            .leases()?
            .into_iter()
            .map(|(id, l)| (id, l.ip))
            .collect())
    }

    /// The address leased to `capsule`, if any.
    pub(crate) fn lease_of(&self, capsule: Uuid) -> Option<Ipv4Addr> {
        let bytes = fs::read(self.lease_path(capsule)).ok()?;
        serde_json::from_slice::<Lease>(&bytes).ok().map(|l| l.ip)
    }

    /// Drops the lease of `capsule` (absent is fine).
    pub(crate) fn release(&self, capsule: Uuid) -> Result<(), IpamFailure> {
        let path = self.lease_path(capsule);
        if !path.exists() {
            return Ok(());
        }
        let _lock = self.lock()?;
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &path)(e)),
            _ => Ok(()),
        }
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash leaves the old
/// content or the new, never a torn file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        use std::io::Write;
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("zun-ipam-test-{}", Uuid::new_v4().simple()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn ipam(dir: &Path, subnet: &str) -> Ipam {
        let s: Ipv4Subnet = subnet.parse().unwrap();
        Ipam::new(dir.join("net"), s, s.first_host())
    }

    #[test]
    fn subnet_parsing() {
        let s: Ipv4Subnet = "10.89.0.0/24".parse().unwrap();
        assert_eq!(s.network, Ipv4Addr::new(10, 89, 0, 0));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 89, 0, 255));
        assert_eq!(s.first_host(), Ipv4Addr::new(10, 89, 0, 1));
        assert_eq!(s.to_string(), "10.89.0.0/24");
        assert!(s.is_host(Ipv4Addr::new(10, 89, 0, 7)));
        assert!(!s.is_host(Ipv4Addr::new(10, 89, 0, 0)));
        assert!(!s.is_host(Ipv4Addr::new(10, 89, 0, 255)));
        assert!(!s.is_host(Ipv4Addr::new(10, 89, 1, 7)));
        for bad in [
            "10.89.0.0",
            "10.89.0.5/24",
            "10.89.0.0/31",
            "10.89.0.0/7",
            "x/24",
            "::1/64",
        ] {
            assert!(bad.parse::<Ipv4Subnet>().is_err(), "{bad}");
        }
        let s: Ipv4Subnet = "10.0.0.0/8".parse().unwrap();
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 255, 255, 255));
    }

    #[test]
    fn allocates_distinct_skips_gateway_and_keeps_own() {
        let d = tmpdir();
        let ipam = ipam(&d, "10.1.2.0/29"); // hosts .1 - .6, .1 is the gateway
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
        let ips: Vec<Ipv4Addr> = ids
            .iter()
            .map(|id| ipam.allocate(*id, &[]).unwrap())
            .collect();
        let want: Vec<Ipv4Addr> = (2..=6).map(|i| Ipv4Addr::new(10, 1, 2, i)).collect();
        assert_eq!(ips, want);
        assert!(matches!(
            ipam.allocate(Uuid::new_v4(), &[]),
            Err(IpamFailure::Exhausted)
        ));
        // Same capsule again: same address.
        assert_eq!(ipam.allocate(ids[2], &[]).unwrap(), ips[2]);
        assert_eq!(ipam.lease_of(ids[2]), Some(ips[2]));
        // Release then allocate a new one: the freed one is the only one left.
        ipam.release(ids[2]).unwrap();
        ipam.release(ids[2]).unwrap();
        assert_eq!(ipam.lease_of(ids[2]), None);
        assert_eq!(ipam.allocate(Uuid::new_v4(), &[]).unwrap(), ips[2]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn round_robin_does_not_reuse_at_once() {
        let d = tmpdir();
        let ipam = ipam(&d, "10.1.2.0/24");
        let a = Uuid::new_v4();
        let ip_a = ipam.allocate(a, &[]).unwrap();
        ipam.release(a).unwrap();
        let ip_b = ipam.allocate(Uuid::new_v4(), &[]).unwrap();
        assert_ne!(ip_a, ip_b);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn port_claims_conflict_across_capsules_only() {
        let d = tmpdir();
        let ipam = ipam(&d, "10.1.2.0/24");
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let tcp80 = PortClaim {
            protocol: Protocol::Tcp,
            port: 80,
        };
        let udp80 = PortClaim {
            protocol: Protocol::Udp,
            port: 80,
        };
        ipam.allocate(a, &[tcp80]).unwrap();
        ipam.allocate(a, &[tcp80, tcp80]).unwrap();
        match ipam.allocate(b, &[tcp80]) {
            Err(IpamFailure::PortClaimed { claim, holder }) => {
                assert_eq!((claim, holder), (tcp80, a));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            ipam.lease_of(b),
            None,
            "a refused allocation leases nothing"
        );
        ipam.allocate(b, &[udp80]).unwrap();
        ipam.release(a).unwrap();
        ipam.allocate(b, &[udp80, tcp80]).unwrap();
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn concurrent_allocations_are_distinct() {
        let d = tmpdir();
        let ipam = ipam(&d, "10.1.0.0/24");
        let handles: Vec<_> = (0..40)
            .map(|_| {
                let ipam = ipam.clone();
                std::thread::spawn(move || ipam.allocate(Uuid::new_v4(), &[]).unwrap())
            })
            .collect();
        let ips: HashSet<Ipv4Addr> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(ips.len(), 40);
        fs::remove_dir_all(&d).unwrap();
    }
}
