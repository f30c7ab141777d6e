//! `imago analytics import`: an edge's access log into the event store, in the event schema
//! ([`super::edge`] maps each line). Batch mode reads whole files (plain, gzip or zstd); follow
//! mode (`--follow`) reads a growing file like `tail -F` (across truncation and rotation) and
//! writes every `--flush-secs`.
//!
//! Events go to `dt=…/hour=…/~edge-{name}-{fwd|own}-{hash}.jsonl.zst`: `fwd` holds the lines the
//! edge forwarded to the origin (`miss`, `pass`, `pipe`; the origin's own events of those requests
//! share their request id), `own` the others (`hit`, `synth`). The name ends with a hash of the
//! file's content, so importing the same lines again rewrites the same files instead of counting
//! them twice. The rollups those hours feed are removed, to be remade with the new lines.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::edge::{EdgeFormat, Parser};
use super::record::Event;
use super::rollup;
use super::store::{self, Store};

/// Arguments of `imago analytics import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Log format.
    #[arg(long, value_enum, default_value = "varnish")]
    pub format: EdgeFormat,
    /// The edge's name, 1-32 of [a-z0-9] (event `instance` is `edge:NAME`; file names carry it).
    #[arg(long, default_value = "edge")]
    pub edge: String,
    /// CloudFront real-time logs: the configured fields, comma-separated, in order.
    #[arg(long)]
    pub fields: Option<String>,
    /// Keep reading the (single) file as it grows, across rotation; stop with SIGTERM/SIGINT.
    #[arg(long)]
    pub follow: bool,
    /// With --follow: start at the beginning of the file (default: its end, like tail -f).
    #[arg(long)]
    pub from_start: bool,
    /// With --follow: write what was read this often.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub flush_secs: u64,
    /// Log files (gzip- or zstd-compressed files are read whole).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Counts of an import.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub lines: u64,
    pub events: u64,
    /// Lines that are not views (API paths, other methods, comments).
    pub skipped: u64,
    pub bad_lines: u64,
    pub files: u64,
}

/// Events read and not yet written, by hour partition and file kind.
#[derive(Default)]
pub struct Batch {
    parts: BTreeMap<(String, &'static str), Vec<Event>>,
}

impl Batch {
    /// Parses one line into the batch.
    pub fn line(&mut self, p: &mut Parser, edge: &str, line: &str, n: &mut Imported) {
        n.lines += 1;
        match p.parse(line, edge) {
            Ok(Some(e)) => {
                let Some(part) = store::partition_of(&e.ts) else {
                    n.bad_lines += 1;
                    return;
                };
                let kind = match e.edge.as_deref() {
                    Some("miss" | "pass" | "pipe") => "fwd",
                    _ => "own",
                };
                self.parts.entry((part, kind)).or_default().push(e);
                n.events += 1;
            }
            Ok(None) => n.skipped += 1,
            Err(e) => {
                if n.bad_lines < 5 {
                    eprintln!(
                        "imago: skipping an unreadable line ({e}): {}",
                        line.chars().take(200).collect::<String>()
                    );
                }
                n.bad_lines += 1;
            }
        }
    }

    /// Writes the batch (one file per hour and kind) and removes the rollups it changes.
    pub async fn write(&mut self, store: &Store, edge: &str, n: &mut Imported) -> Result<(), String> {
        let mut hours = BTreeSet::new();
        let keys: Vec<(String, &'static str)> = self.parts.keys().cloned().collect();
        for key in keys {
            let Some(events) = self.parts.get(&key) else { continue };
            let (part, kind) = &key;
            let body = store::encode(events, store::Codec::Zstd)?;
            let digest = Sha256::digest(&body);
            let name = format!("{part}/~edge-{edge}-{kind}-{}.jsonl.zst", hex::encode(&digest[..12]));
            store.put(&name, body).await?;
            n.files += 1;
            if let Some(t) = events
                .first()
                .and_then(|e| e.ts.get(..13))
                .and_then(|h| format!("{h}:00:00Z").parse::<jiff::Timestamp>().ok())
            {
                hours.insert(t.as_second().div_euclid(3600));
            }
            // Written: not kept for the next write.
            self.parts.remove(&key);
        }
        rollup::invalidate(store, &hours).await
    }
}

/// Checks an edge name: 1-32 of `[a-z0-9]`.
pub fn check_edge_name(name: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    ok.then_some(()).ok_or_else(|| format!("--edge `{name}`: use 1-32 of a-z and 0-9"))
}

/// Imports whole files.
pub async fn batch(store: &Store, a: &ImportArgs) -> Result<Imported, String> {
    check_edge_name(&a.edge)?;
    let mut p = Parser::new(a.format, a.fields.as_deref());
    let mut n = Imported::default();
    let mut b = Batch::default();
    for f in &a.files {
        let raw = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let compressed = raw.starts_with(&[0x1f, 0x8b]) || raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
        let text = if compressed { store::decode(&raw, 8 << 30)? } else { String::from_utf8_lossy(&raw).into_owned() };
        for line in text.lines() {
            b.line(&mut p, &a.edge, line, &mut n);
        }
    }
    b.write(store, &a.edge, &mut n).await?;
    Ok(n)
}

/// A file followed across truncation and rotation.
struct Tail {
    path: PathBuf,
    file: Option<std::fs::File>,
    id: Option<(u64, u64)>,
    pos: u64,
    partial: Vec<u8>,
}

#[cfg(unix)]
fn file_id(m: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

impl Tail {
    /// Complete lines appended since the last call.
    fn read_lines(&mut self) -> Vec<String> {
        if let Ok(m) = std::fs::metadata(&self.path) {
            let rotated = self.file.is_some() && file_id(&m) != self.id;
            if rotated {
                // Finish the old file first (its last lines), then start the new one from 0.
                let mut rest = self.read_more();
                self.file = None;
                self.pos = 0;
                self.partial.clear();
                rest.extend(self.read_lines());
                return rest;
            }
            if self.file.is_none() {
                if let Ok(f) = std::fs::File::open(&self.path) {
                    self.id = file_id(&m);
                    self.file = Some(f);
                }
            }
            if m.len() < self.pos {
                // Truncated (copytruncate rotation).
                self.pos = 0;
                self.partial.clear();
            }
        }
        self.read_more()
    }

    fn read_more(&mut self) -> Vec<String> {
        let Some(f) = self.file.as_mut() else { return Vec::new() };
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(self.pos)).is_err() || f.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        self.pos += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else { return Vec::new() };
        let done: Vec<u8> = self.partial.drain(..=end).collect();
        String::from_utf8_lossy(&done).lines().map(String::from).collect()
    }
}

/// Follows one file until SIGTERM or SIGINT, writing every `--flush-secs`.
pub async fn follow(store: &Store, a: &ImportArgs) -> Result<Imported, String> {
    check_edge_name(&a.edge)?;
    let [path] = a.files.as_slice() else { return Err("--follow reads one file".into()) };
    let mut p = Parser::new(a.format, a.fields.as_deref());
    let mut n = Imported::default();
    let mut b = Batch::default();
    let start = if a.from_start { 0 } else { std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) };
    let mut tail = Tail { path: path.clone(), file: None, id: None, pos: start, partial: Vec::new() };
    let stop = stop_signal();
    tokio::pin!(stop);
    let mut next_write = tokio::time::Instant::now() + Duration::from_secs(a.flush_secs);
    loop {
        for line in tail.read_lines() {
            b.line(&mut p, &a.edge, &line, &mut n);
        }
        let stopping = tokio::select! {
            _ = &mut stop => true,
            _ = tokio::time::sleep(Duration::from_millis(250)) => false,
        };
        if stopping || tokio::time::Instant::now() >= next_write {
            if stopping {
                for line in tail.read_lines() {
                    b.line(&mut p, &a.edge, &line, &mut n);
                }
            }
            if let Err(e) = b.write(store, &a.edge, &mut n).await {
                // Kept for the next write.
                eprintln!("imago: writing edge events failed, will retry: {e}");
            }
            next_write = tokio::time::Instant::now() + Duration::from_secs(a.flush_secs);
        }
        if stopping {
            return Ok(n);
        }
    }
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
