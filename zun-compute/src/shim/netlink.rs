//! Brings `lo` up in a new network namespace (the OCI runtime does not; netavark does it for the
//! namespaces the agent prepares). One rtnetlink `RTM_NEWLINK` request, no dependency: the shim
//! enters the namespace just long enough to open the socket (a netlink socket stays bound to the
//! namespace it was created in), then returns to its own.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{
    recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

const RTM_NEWLINK: u16 = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const IFF_UP: u32 = 1;
/// `lo` is always interface 1 of a network namespace.
const LOOPBACK_IFINDEX: i32 = 1;

/// The request: `nlmsghdr` (16 bytes) then `ifinfomsg` (16 bytes), host byte order.
fn link_up_request(ifindex: i32, seq: u32) -> [u8; 32] {
    let mut m = [0u8; 32];
    m[0..4].copy_from_slice(&32u32.to_ne_bytes());
    m[4..6].copy_from_slice(&RTM_NEWLINK.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    // pid 0: the kernel. ifinfomsg: family AF_UNSPEC, pad, type 0.
    m[20..24].copy_from_slice(&ifindex.to_ne_bytes());
    m[24..28].copy_from_slice(&IFF_UP.to_ne_bytes()); // flags
    m[28..32].copy_from_slice(&IFF_UP.to_ne_bytes()); // change mask
    m
}

/// The kernel's answer: `Ok` for an ACK (an `NLMSG_ERROR` carrying 0).
fn parse_ack(buf: &[u8]) -> io::Result<()> {
    if buf.len() < 20 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "short netlink answer",
        ));
    }
    let typ = u16::from_ne_bytes([buf[4], buf[5]]);
    if typ != NLMSG_ERROR {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected netlink message type {typ}"),
        ));
    }
    let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(-code))
    }
}

/// Sets `lo` up in the network namespace `netns` (a `/proc/<pid>/ns/net` path).
pub(crate) fn loopback_up(netns: &Path) -> io::Result<()> {
    let target = File::open(netns)?;
    let own = File::open("/proc/thread-self/ns/net")?;
    setns(&target, CloneFlags::CLONE_NEWNET)?;
    let sock = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    );
    // Back home before anything else, whatever happened.
    setns(&own, CloneFlags::CLONE_NEWNET)?;
    let sock = sock?;
    let request = link_up_request(LOOPBACK_IFINDEX, 1);
    sendto(
        sock.as_raw_fd(),
        &request,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    let mut buf = [0u8; 512];
    let n = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty())?;
    parse_ack(&buf[..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let m = link_up_request(1, 7);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 32);
        assert_eq!(u16::from_ne_bytes(m[4..6].try_into().unwrap()), 16);
        assert_eq!(u16::from_ne_bytes(m[6..8].try_into().unwrap()), 5);
        assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), 7);
        assert_eq!(i32::from_ne_bytes(m[20..24].try_into().unwrap()), 1);
    }

    #[test]
    fn acks_and_errors() {
        let mut ack = [0u8; 36];
        ack[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        parse_ack(&ack).unwrap();
        ack[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        assert_eq!(
            parse_ack(&ack).unwrap_err().raw_os_error(),
            Some(libc::EPERM)
        );
        assert!(parse_ack(&ack[..8]).is_err());
    }
}
