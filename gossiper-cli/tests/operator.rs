//! The operator's commands: `keygen`, `completions`, `--version` on subcommands.

mod common;

#[test]
fn keygen_writes_a_private_key_file_the_agent_accepts_and_never_overwrites() {
    let dir = std::env::temp_dir().join(format!("gossiper-keygen-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("cluster.key");
    let path_s = path.to_string_lossy().into_owned();
    let o = common::gossiper("keygen", &[&path_s]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let text = std::fs::read_to_string(&path).expect("key file");
    assert!(gossiper_cluster::Keyring::parse(&text).is_ok(), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode {mode:o}");
    }
    let again = common::gossiper("keygen", &[&path_s]);
    assert_eq!(again.status.code(), Some(1), "an existing file is kept");
    assert_eq!(std::fs::read_to_string(&path).expect("key file"), text);
    let other = dir.join("other.key");
    let o = common::gossiper("keygen", &[&other.to_string_lossy()]);
    assert!(o.status.success());
    assert_ne!(
        std::fs::read_to_string(&other).expect("other"),
        text,
        "keys differ"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn completions_and_versions_are_printed() {
    for shell in ["bash", "zsh", "fish"] {
        let o = common::gossiper("completions", &[shell]);
        let script = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{shell}: {}", common::stderr(&o));
        assert!(
            script.contains("gossiper") && script.contains("agent"),
            "{shell}"
        );
    }
    common::assert_usage_error("completions", &["tcsh"], "tcsh");
    for sub in ["agent", "simulate", "keygen"] {
        let o = common::gossiper(sub, &["--version"]);
        assert!(o.status.success(), "{sub} --version");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(env!("CARGO_PKG_VERSION")), "{sub}: {out}");
    }
}
