//! What imago derives from, or demands of, the container it runs in: the memory limit it sheds
//! load under (from the cgroup when not set) and the public URL upload tickets point at.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};

/// Where cgroup file systems are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// With `IMAGO_MEMORY_LIMIT_MB` unset, shedding starts at this share of the cgroup's limit: the
/// rest is headroom for the transforms already running when RSS crosses it (each can still
/// grow by its own peak) before the kernel's OOM killer acts.
pub const CGROUP_SHARE_PERCENT: u64 = 85;
/// cgroup v1 reports "no limit" as a huge page-aligned number (2^63 - 4096 on x86-64); anything
/// from 2^60 bytes (an exbibyte) up is treated as no limit.
const UNLIMITED_FROM: u64 = 1 << 60;

/// A cgroup memory limit and the file it was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupLimit {
    pub bytes: u64,
    pub file: PathBuf,
}

/// The resident-memory ceiling above which new transforms are shed, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemoryLimit {
    /// `IMAGO_MEMORY_LIMIT_MB=0`.
    Off,
    /// `IMAGO_MEMORY_LIMIT_MB=N`.
    Set { bytes: u64 },
    /// Unset: [`CGROUP_SHARE_PERCENT`] of the cgroup's limit.
    FromCgroup { bytes: u64, cgroup: CgroupLimit },
    /// Unset, and no cgroup limit was found ("max", absent, or unlimited).
    NoCgroupLimit,
}

impl MemoryLimit {
    /// Resolves `IMAGO_MEMORY_LIMIT_MB` (None = unset) against the cgroup tree under `root` that
    /// `proc_self_cgroup` (the text of `/proc/self/cgroup`) places this process in.
    pub fn resolve(setting_mb: Option<u64>, root: &Path, proc_self_cgroup: &str) -> MemoryLimit {
        match setting_mb {
            Some(0) => MemoryLimit::Off,
            Some(mb) => MemoryLimit::Set { bytes: mb.saturating_mul(1024 * 1024) },
            None => match cgroup_memory_limit(root, proc_self_cgroup) {
                Some(cgroup) => MemoryLimit::FromCgroup { bytes: cgroup.bytes / 100 * CGROUP_SHARE_PERCENT, cgroup },
                None => MemoryLimit::NoCgroupLimit,
            },
        }
    }

    /// The process's own: `/sys/fs/cgroup` and `/proc/self/cgroup`.
    pub fn detect(setting_mb: Option<u64>) -> MemoryLimit {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        MemoryLimit::resolve(setting_mb, Path::new(CGROUP_ROOT), &own)
    }

    /// Bytes of RSS above which new transforms are shed; 0 = never.
    pub fn bytes(&self) -> u64 {
        match self {
            MemoryLimit::Set { bytes } | MemoryLimit::FromCgroup { bytes, .. } => *bytes,
            MemoryLimit::Off | MemoryLimit::NoCgroupLimit => 0,
        }
    }
}

impl std::fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MB: u64 = 1024 * 1024;
        match self {
            MemoryLimit::Off => write!(f, "off (IMAGO_MEMORY_LIMIT_MB=0)"),
            MemoryLimit::Set { bytes } => write!(f, "{} MB (IMAGO_MEMORY_LIMIT_MB)", bytes / MB),
            MemoryLimit::FromCgroup { bytes, cgroup } => write!(
                f,
                "{} MB ({CGROUP_SHARE_PERCENT} % of the cgroup limit {} MB in {})",
                bytes / MB,
                cgroup.bytes / MB,
                cgroup.file.display()
            ),
            MemoryLimit::NoCgroupLimit => write!(f, "off (IMAGO_MEMORY_LIMIT_MB unset and no cgroup memory limit)"),
        }
    }
}

/// The tightest memory limit on the way from this process's cgroup up to the mount's root:
/// cgroup v2 `memory.max` (hierarchy `0::/path`), cgroup v1 `memory/…/memory.limit_in_bytes`
/// (the hierarchy listing `memory`). Walking up covers a limit set on a parent (a pod's) and a
/// container that sees its own cgroup at the mount's root while `/proc/self/cgroup` still names
/// the host's path. "max", an absent or unreadable file and v1's "unlimited" mean no limit.
pub fn cgroup_memory_limit(root: &Path, proc_self_cgroup: &str) -> Option<CgroupLimit> {
    let mut v2 = "/";
    let mut v1 = "/";
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            v2 = path;
        } else if controllers.split(',').any(|c| c == "memory") {
            v1 = path;
        }
    }
    let v2 = chain(root, v2, "memory.max");
    let v1 = chain(&root.join("memory"), v1, "memory.limit_in_bytes");
    v2.into_iter()
        .chain(v1)
        .filter_map(|file| {
            let text = std::fs::read_to_string(&file).ok()?;
            let bytes: u64 = text.trim().parse().ok()?;
            (bytes < UNLIMITED_FROM).then_some(CgroupLimit { bytes, file })
        })
        .min_by_key(|l| l.bytes)
}

/// `base/a/b/file`, `base/a/file`, `base/file` for the cgroup path `/a/b`.
fn chain(base: &Path, cgroup_path: &str, file: &str) -> Vec<PathBuf> {
    let rel: PathBuf = Path::new(cgroup_path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s),
            _ => None,
        })
        .collect();
    rel.ancestors().map(|a| base.join(a).join(file)).collect()
}

/// Upload tickets carry absolute URLs (`url`, `image_url`, `info_url`). Without
/// `IMAGO_PUBLIC_URL` they are built from the bound address, which for a wildcard bind
/// (`0.0.0.0`, `[::]`, as in every container) is no address a client can reach.
pub fn check_public_url(bind: &SocketAddr, public_url: Option<&str>, uploads_on: bool) -> Result<(), String> {
    if uploads_on && public_url.is_none() && bind.ip().is_unspecified() {
        return Err(format!(
            "required when uploads are on (IMAGO_API_KEYS) and IMAGO_BIND is a wildcard address ({bind}): \
             tickets would send clients to http://{bind}/…; set it to the URL clients reach imago at \
             (the CDN or edge in front of it), e.g. https://images.example.com"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{List, RawConfig};
    use super::*;

    fn uploads_on(bind: &str) -> RawConfig {
        RawConfig {
            bind: bind.into(),
            key: List::from_strs(&["aa11"]),
            salt: List::from_strs(&["bb22"]),
            api_keys: List::from_strs(&["key-one-0123456789"]),
            ..Default::default()
        }
    }

    #[test]
    fn wildcard_bind_with_uploads_needs_a_public_url() {
        for bind in ["0.0.0.0:8080", "[::]:8080"] {
            let e = uploads_on(bind).validate(false).unwrap_err().to_string();
            assert!(e.contains("IMAGO_PUBLIC_URL") && e.contains(bind), "{bind}: {e}");
        }
        // A public URL, no uploads, or a specific address: starts.
        let with_url = RawConfig { public_url: Some("https://img.example.com".into()), ..uploads_on("0.0.0.0:8080") };
        assert_eq!(with_url.validate(false).unwrap().uploads.public_url, "https://img.example.com");
        assert!(RawConfig { api_keys: List::default(), ..uploads_on("0.0.0.0:8080") }.validate(false).is_ok());
        assert!(uploads_on("127.0.0.1:8080").validate(false).is_ok());
    }

    const MIB: u64 = 1024 * 1024;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn cgroup_v2_limit_and_max() {
        let d = tempfile::tempdir().unwrap();
        // A container with its own cgroup namespace: "0::/" and memory.max at the mount's root.
        write(d.path(), "memory.max", "2147483648\n");
        let l = cgroup_memory_limit(d.path(), "0::/\n").unwrap();
        assert_eq!((l.bytes, l.file.clone()), (2 * 1024 * MIB, d.path().join("memory.max")));
        let m = MemoryLimit::resolve(None, d.path(), "0::/\n");
        assert_eq!(m.bytes(), 2 * 1024 * MIB / 100 * 85);
        assert!(m.to_string().contains("85 % of the cgroup limit 2048 MB"), "{m}");
        // "max": no limit, nothing shed.
        write(d.path(), "memory.max", "max\n");
        assert_eq!(cgroup_memory_limit(d.path(), "0::/\n"), None);
        assert_eq!(MemoryLimit::resolve(None, d.path(), "0::/\n"), MemoryLimit::NoCgroupLimit);
        assert_eq!(MemoryLimit::resolve(None, d.path(), "0::/\n").bytes(), 0);
    }

    #[test]
    fn cgroup_v2_nested_takes_the_tightest_on_the_way_up() {
        let d = tempfile::tempdir().unwrap();
        let own = "0::/kubepods/pod1/ctr\n";
        write(d.path(), "kubepods/pod1/ctr/memory.max", "max\n");
        write(d.path(), "kubepods/pod1/memory.max", "1073741824\n");
        write(d.path(), "kubepods/memory.max", "8589934592\n");
        let l = cgroup_memory_limit(d.path(), own).unwrap();
        assert_eq!((l.bytes, l.file), (1024 * MIB, d.path().join("kubepods/pod1/memory.max")));
        // The process's path does not exist under the mount (namespaced view): the root's file.
        let d2 = tempfile::tempdir().unwrap();
        write(d2.path(), "memory.max", "536870912");
        assert_eq!(cgroup_memory_limit(d2.path(), "0::/docker/abc\n").unwrap().bytes, 512 * MIB);
    }

    #[test]
    fn cgroup_v1_limit_and_unlimited() {
        let d = tempfile::tempdir().unwrap();
        let own = "12:pids:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/docker/abc\n";
        write(d.path(), "memory/memory.limit_in_bytes", "9223372036854771712\n");
        assert_eq!(cgroup_memory_limit(d.path(), own), None, "v1 'unlimited'");
        write(d.path(), "memory/docker/abc/memory.limit_in_bytes", "3221225472\n");
        let l = cgroup_memory_limit(d.path(), own).unwrap();
        assert_eq!((l.bytes, l.file), (3 * 1024 * MIB, d.path().join("memory/docker/abc/memory.limit_in_bytes")));
        // Combined controllers ("4:cpu,memory:/x") count too.
        assert_eq!(cgroup_memory_limit(d.path(), "4:cpu,memory:/docker/abc\n").unwrap().bytes, 3 * 1024 * MIB);
    }

    #[test]
    fn cgroup_absent_garbage_and_the_setting_wins() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(cgroup_memory_limit(d.path(), ""), None, "no files at all");
        write(d.path(), "memory.max", "lots\n");
        assert_eq!(cgroup_memory_limit(d.path(), "0::/\n"), None, "unparseable = no limit");
        write(d.path(), "memory.max", "2147483648\n");
        assert_eq!(MemoryLimit::resolve(Some(0), d.path(), "0::/"), MemoryLimit::Off);
        assert_eq!(MemoryLimit::resolve(Some(1500), d.path(), "0::/").bytes(), 1500 * MIB);
        // Paths from /proc/self/cgroup never leave the mount.
        assert_eq!(
            chain(d.path(), "/../../etc", "memory.max"),
            vec![d.path().join("etc/memory.max"), d.path().join("memory.max")]
        );
    }
}
