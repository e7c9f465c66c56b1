//! `cp SRC DST`: files between here and a container, one side `CONTAINER:/path`, as `zun cp`
//! does: up, the local file or directory is sent as a tar archive into the container's
//! directory `/path`; down, the archive of the container's `/path` is unpacked into the local
//! directory `DST` (entries that would land outside it are refused by the unpacker).

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::json;

use super::segment;
use crate::client::Client;
use crate::CliError;

/// `cp` arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// From: a local path or `CONTAINER:/path`.
    pub source: String,
    /// To: a local directory or `CONTAINER:/directory`.
    pub destination: String,
}

/// One side of a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// A local path.
    Local(PathBuf),
    /// A path in a container.
    Container {
        /// The container's name or uuid.
        container: String,
        /// The absolute path in it.
        path: String,
    },
}

/// `CONTAINER:/path` (a name without `/` before the first `:`), else a local path.
pub fn end(arg: &str) -> End {
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() && !c.contains('/') => End::Container {
            container: c.to_owned(),
            path: p.to_owned(),
        },
        _ => End::Local(PathBuf::from(arg)),
    }
}

/// The two sides, exactly one of them in a container.
pub fn plan(args: &Args) -> Result<(End, End), CliError> {
    let (s, d) = (end(&args.source), end(&args.destination));
    match (&s, &d) {
        (End::Local(_), End::Container { .. }) | (End::Container { .. }, End::Local(_)) => {
            Ok((s, d))
        }
        _ => Err(CliError::Usage(
            "one side of cp must be CONTAINER:/path, the other a local path".into(),
        )),
    }
}

/// A tar archive of `local`, named by its last component.
fn archive(local: &Path) -> Result<Vec<u8>, CliError> {
    let io = |e: std::io::Error| CliError::Failed(format!("{}: {e}", local.display()));
    let name = local
        .file_name()
        .ok_or_else(|| CliError::Usage(format!("{} names no file", local.display())))?;
    let mut b = tar::Builder::new(Vec::new());
    if local.is_dir() {
        b.append_dir_all(name, local).map_err(io)?;
    } else {
        b.append_path_with_name(local, name).map_err(io)?;
    }
    b.into_inner().map_err(io)
}

/// Runs it.
pub fn run(client: &Client, args: &Args) -> Result<(), CliError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    match plan(args)? {
        (End::Local(local), End::Container { container, path }) => {
            let data = b64.encode(archive(&local)?);
            let url = format!(
                "/containers/{}/put_archive?path={}",
                segment(&container),
                segment(&path)
            );
            client.post(&url, &json!({ "data": data }))?;
        }
        (End::Container { container, path }, End::Local(local)) => {
            let url = format!(
                "/containers/{}/get_archive?path={}",
                segment(&container),
                segment(&path)
            );
            let answer = client.get(&url)?;
            let data = answer["data"].as_str().unwrap_or_default();
            let bytes = b64
                .decode(data)
                .map_err(|e| CliError::Failed(format!("the archive is not base64: {e}")))?;
            tar::Archive::new(bytes.as_slice())
                .unpack(&local)
                .map_err(|e| {
                    CliError::Failed(format!("unpacking into {}: {e}", local.display()))
                })?;
        }
        _ => unreachable!("plan allows one container side"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str, d: &str) -> Args {
        Args {
            source: s.into(),
            destination: d.into(),
        }
    }

    #[test]
    fn one_side_in_a_container() {
        let (s, d) = plan(&args("./a:b", "web:/tmp")).unwrap();
        assert_eq!(s, End::Local("./a:b".into()));
        assert_eq!(
            d,
            End::Container {
                container: "web".into(),
                path: "/tmp".into()
            }
        );
        assert!(plan(&args("web:/a", "db:/b")).is_err());
        assert_eq!(plan(&args("a", "b")).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn archives_carry_the_last_component() {
        let dir = std::env::temp_dir().join(format!("capsule-cp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("hello.txt");
        std::fs::write(&f, b"hi\n").unwrap();
        let bytes = archive(&f).unwrap();
        let mut a = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["hello.txt"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
