//! `gossiper keygen PATH`: writes a new 256-bit cluster key (64 hex digits) from the OS's
//! randomness to a file only its owner can read (mode 0600), for `--key-file`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use gossiper_cluster::Keyring;
use rand::Rng;

use crate::CliError;

/// Options of `gossiper keygen`.
#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// The key file to create; an existing file is never overwritten.
    pub path: PathBuf,
}

/// Creates the key file and says how to use it.
pub fn run(args: &KeygenArgs) -> Result<(), CliError> {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let text = format!(
        "# gossiper cluster key: give every agent this file (--key-file). To rotate, add a new\n\
         # key as the first line everywhere, then remove the old one.\n{hex}\n"
    );
    // The file must be what the agent reads back.
    Keyring::parse(&text).map_err(|e| CliError::failure(format!("generated a bad key: {e}")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let path = &args.path;
    let mut file = options
        .open(path)
        .map_err(|e| CliError::failure(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "wrote a new cluster key to {} (mode 0600); start every agent with --key-file {}",
        path.display(),
        path.display()
    );
    Ok(())
}
