//! Saves the keyring after a key query changed it, as Serf's `writeKeyringFile` does (a JSON
//! array of base64 keys, primary first, mode 0600), but atomically: the keys go to a
//! temporary file beside the keyring file, which is synced and then renamed over it, so a
//! crash leaves the old keyring or the new one, never half of either.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary file `path` is written through.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `keys` (primary first) to `path`; the error says what failed.
pub(crate) fn save(path: &Path, keys: &[Vec<u8>]) -> Result<(), String> {
    let text = gossiper_memberlist::crypto::keyring_file_text(keys);
    let tmp = temp_path(path);
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is made durable by syncing the directory (best effort).
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok::<(), std::io::Error>(())
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("Failed to write keyring file: {e}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gossiper-keyring-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn saves_replace_the_file_whole_and_leave_no_temporary_behind() {
        let d = dir("save");
        let path = d.join("keyring.json");
        std::fs::write(&path, "[\"old\"]").unwrap();
        save(&path, &[vec![1; 16], vec![2; 32]]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            gossiper_memberlist::crypto::keyring_file_text(&[vec![1; 16], vec![2; 32]])
        );
        assert!(
            text.starts_with("[\n  \"AQEBAQEBAQEBAQEBAQEBAQ==\",\n"),
            "{text}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let left: Vec<_> = std::fs::read_dir(&d).unwrap().collect();
        assert_eq!(left.len(), 1, "only the keyring file");
        // A directory that is not there: an error that says so, nothing half written.
        let missing = d.join("nope").join("keyring.json");
        let e = save(&missing, &[vec![1; 16]]).unwrap_err();
        assert!(e.starts_with("Failed to write keyring file"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
