//! Files for other programs to read: node_exporter's textfile collector (`*.prom`, text
//! 0.0.4) and Prometheus' file-based service discovery (`file_sd_configs`, JSON).
//!
//! Every file is written atomically: the bytes go to `<path>.tmp.<pid>` in the same
//! directory, are fsynced, and the temporary is renamed over `<path>` (then the directory
//! is fsynced, best effort). A reader sees the old file or the new one, never a part.
//! Neither reader picks up the temporary: node_exporter reads only `*.prom`, and file_sd
//! patterns end in `.json`.

use crate::error::{Error, Result};
use crate::expo::{Encoder, Format};
use crate::registry::Registry;
use parking_lot::Mutex;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Serialises writers inside this process (they would share `<path>.tmp.<pid>`).
static WRITING: Mutex<()> = Mutex::new(());
/// The file_sd file this process registered, removed by [`sd_remove`].
static SD_FILE: Mutex<Option<PathBuf>> = Mutex::new(None);

/// A q file path as text: a leading `:` (`` `:/dir/x.prom ``) is dropped.
pub fn q_path(p: &str) -> &str {
    p.strip_prefix(':').unwrap_or(p)
}

fn io_error(e: &std::io::Error) -> Error {
    match e.kind() {
        ErrorKind::NotFound => Error::DirMissing,
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => Error::DirNotWritable,
        _ => Error::WriteFailed,
    }
}

/// The directory `path` is in; it must exist and be a directory.
fn parent_dir(path: &Path) -> Result<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match fs::metadata(&dir) {
        Ok(m) if m.is_dir() => Ok(dir),
        _ => Err(Error::DirMissing),
    }
}

/// Writes `data` to `path` atomically (see the module comment). `path`'s directory must
/// exist; on any failure the temporary is removed and `path` is untouched.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = parent_dir(path)?;
    let name = path.file_name().ok_or(Error::WriteFailed)?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let _one = WRITING.lock();
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(&tmp)
            .map_err(|e| io_error(&e))?;
        f.write_all(data).map_err(|_| Error::WriteFailed)?;
        f.sync_all().map_err(|_| Error::WriteFailed)?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| match e.kind() {
            ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => Error::DirNotWritable,
            _ => Error::WriteFailed,
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // The rename is durable once the directory is synced; a failure here loses nothing
    // the caller could act on.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Checks a textfile collector path: the name ends in `.prom` (and is more than that).
pub fn textfile_path(p: &str) -> Result<PathBuf> {
    let p = q_path(p);
    let name = Path::new(p).file_name().and_then(|n| n.to_str()).unwrap_or("");
    if p.ends_with('/') || name.len() <= ".prom".len() || !name.ends_with(".prom") {
        return Err(Error::TextfileSuffix);
    }
    Ok(PathBuf::from(p))
}

/// `.prom.write[path]`: the registry in text 0.0.4 (no timestamps) written atomically to
/// `path` for node_exporter's textfile collector.
pub fn write_textfile(reg: &Registry, path: &str) -> Result<PathBuf> {
    let path = textfile_path(path)?;
    parent_dir(&path)?;
    let mut enc = Encoder::new();
    write_atomic(&path, enc.encode(reg, Format::Text))?;
    Ok(path)
}

// ---- file_sd ----------------------------------------------------------------------------

fn valid_label_name(n: &str) -> Result<()> {
    let mut cs = n.chars();
    let first_ok = matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !cs.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::InvalidLabelName);
    }
    if n.starts_with("__") {
        return Err(Error::ReservedLabelName);
    }
    Ok(())
}

/// `host:port` with a non-empty host (a name, an IPv4 address or `[ipv6]`) and a port
/// in 1..=65535; no whitespace, `/`, `"` or `\`.
fn valid_target(t: &str) -> Result<(&str, u16)> {
    let (host, port) = t.rsplit_once(':').ok_or(Error::SdTarget)?;
    let port: u16 = match port.parse() {
        Ok(p) if p > 0 && !port.starts_with('+') => p,
        _ => return Err(Error::SdTarget),
    };
    let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '/' | '"' | '\\' | '@' | '?' | '#');
    let bracketed = host.starts_with('[') && host.ends_with(']') && host.len() > 2;
    if host.is_empty() || host.chars().any(bad) || (host.contains(':') && !bracketed) {
        return Err(Error::SdTarget);
    }
    Ok((host, port))
}

/// The file_sd document: one target group with these labels (checked: valid names, not
/// `__`-reserved, no duplicates). Keys come out sorted (serde_json's map), which file_sd
/// does not mind.
pub fn sd_json(target: &str, labels: &[(&str, &str)]) -> Result<String> {
    valid_target(target)?;
    let mut map = serde_json::Map::new();
    for (i, (n, v)) in labels.iter().enumerate() {
        valid_label_name(n)?;
        if labels[..i].iter().any(|(m, _)| m == n) {
            return Err(Error::DuplicateLabelName);
        }
        map.insert((*n).into(), (*v).into());
    }
    let doc = serde_json::json!([{ "targets": [target], "labels": map }]);
    // Serialising a Value of strings cannot fail (no maps with non-string keys, no I/O).
    let mut out = doc.to_string();
    out.push('\n');
    Ok(out)
}

/// `qprom-<host>-<port>.json`, the host's characters outside `[A-Za-z0-9._-]` as `_`.
pub fn sd_file_name(target: &str) -> Result<String> {
    let (host, port) = valid_target(target)?;
    let host: String = host
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    Ok(format!("qprom-{host}-{port}.json"))
}

/// Writes `<dir>/qprom-<host>-<port>.json` atomically and remembers it; a file this
/// process registered before under another name is removed. Returns the path.
pub fn sd_register(dir: &str, target: &str, labels: &[(&str, &str)]) -> Result<PathBuf> {
    let dir = Path::new(q_path(dir));
    if !fs::metadata(dir).map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Error::DirMissing);
    }
    let doc = sd_json(target, labels)?;
    let path = dir.join(sd_file_name(target)?);
    let mut cur = SD_FILE.lock();
    write_atomic(&path, doc.as_bytes())?;
    if let Some(old) = cur.replace(path.clone()) {
        // Compared as files, not as spellings: `.` then the absolute directory (or a
        // symlink) names the file just written, which must stay (found by the fuzzer).
        if old != path && !same_file(&old, &path) {
            let _ = fs::remove_file(old);
        }
    }
    Ok(path)
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Removes the registered file_sd file, if any; true when one was removed.
pub fn sd_remove() -> bool {
    match SD_FILE.lock().take() {
        Some(p) => fs::remove_file(p).is_ok(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("qprom-textfile-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let d = tmpdir("atomic");
        let p = d.join("x.prom");
        write_atomic(&p, b"a 1\n").unwrap();
        write_atomic(&p, b"a 2\n").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"a 2\n");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        assert_eq!(write_atomic(&d.join("no/x.prom"), b""), Err(Error::DirMissing));
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn textfile_paths() {
        assert_eq!(textfile_path(":/d/x.prom").unwrap(), PathBuf::from("/d/x.prom"));
        for bad in ["/d/x.txt", "/d/.prom", "/d/x.prom/", "", "x.prom.tmp"] {
            assert_eq!(textfile_path(bad), Err(Error::TextfileSuffix), "{bad}");
        }
    }

    #[test]
    fn sd_documents_read_back_as_written() {
        let every: String = (0u32..0x80).filter_map(char::from_u32).chain("é\u{2028}😀".chars()).collect();
        let j = sd_json("[::1]:9", &[("a", every.as_str()), ("b", "")]).unwrap();
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v[0]["labels"]["a"], every.as_str());
        assert_eq!(v[0]["labels"]["b"], "");
        assert_eq!(v[0]["targets"], serde_json::json!(["[::1]:9"]));
        assert_eq!(v.as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn sd_documents() {
        let j = sd_json("h:9", &[("name", "a\"b\\c\n\u{1}é"), ("job", "kdb")]).unwrap();
        assert_eq!(j, "[{\"labels\":{\"job\":\"kdb\",\"name\":\"a\\\"b\\\\c\\n\\u0001é\"},\"targets\":[\"h:9\"]}]\n");
        assert_eq!(sd_json("h:9", &[("__x", "1")]), Err(Error::ReservedLabelName));
        assert_eq!(sd_json("h:9", &[("1x", "1")]), Err(Error::InvalidLabelName));
        assert_eq!(sd_json("h:9", &[("a", "1"), ("a", "2")]), Err(Error::DuplicateLabelName));
        for bad in ["h", "h:0", "h:70000", ":1", "a b:1", "::1:5", "h:+5", "h/x:1"] {
            assert_eq!(sd_json(bad, &[]), Err(Error::SdTarget), "{bad}");
        }
        assert_eq!(sd_file_name("[::1]:9612").unwrap(), "qprom-___1_-9612.json");
        assert_eq!(sd_file_name("db1.example:80").unwrap(), "qprom-db1.example-80.json");
    }

    #[test]
    fn sd_register_and_remove() {
        let d = tmpdir("sd");
        let p = sd_register(d.to_str().unwrap(), "h:1", &[("job", "kdb")]).unwrap();
        assert!(p.exists());
        let p2 = sd_register(d.to_str().unwrap(), "h:2", &[]).unwrap();
        assert!(!p.exists() && p2.exists());
        assert!(sd_remove());
        assert!(!p2.exists());
        assert!(!sd_remove());
        assert_eq!(sd_register("/nonexistent-qprom", "h:1", &[]), Err(Error::DirMissing));
        fs::remove_dir_all(d).unwrap();
    }
}
