//! Where `gossiper agent` takes its settings from, in precedence order: the flags, the
//! `GOSSIPER_*` environment variables, the `--config` TOML file, the defaults.
//!
//! clap reads the first two layers (each flag's `env`); this module reads the file and fills
//! every setting that neither a flag nor a variable gave ([`ArgMatches::value_source`] says
//! which those are). A file key is a long flag's name (`api-max-parked = 64`; lists are arrays:
//! `join = ["seed-1:7946"]`). An unknown key is an error naming it, and so is a value of the
//! wrong type; both name the file, and the agent exits 2. A `-ms` key takes an integer of
//! milliseconds or a string in the API's duration grammar (`"10s"`, `"500ms"`). Relative paths
//! in the file are relative to the file's folder, so a service's files can travel together.
//!
//! The file is read again on SIGHUP ([`Layers::resolve`] again, with the same flags and
//! variables), which is how the key file and the log level change at run time.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::Deserialize;

use super::{AgentArgs, LogFormat};
use crate::CliError;
use crate::detector::DetectorArg;

/// The log filter when neither `log-level` nor `RUST_LOG` says otherwise: the agent's own
/// news (membership changes, reloads) at info, everything else's warnings.
pub const DEFAULT_LOG_FILTER: &str = "warn,gossiper_agent=info,gossiper_cli::agent=info";

/// What the flags and the environment said, and which settings they set; the file fills the
/// rest each time [`resolve`](Self::resolve) is called.
#[derive(Debug, Clone)]
pub struct Layers {
    cli: AgentArgs,
    /// Ids (field names) of the settings given by a flag or a variable.
    given: BTreeSet<String>,
}

impl Layers {
    /// The flags and variables of one parse: `matches` are the `agent` subcommand's.
    pub fn new(cli: AgentArgs, matches: &ArgMatches) -> Layers {
        let given = matches
            .ids()
            .filter(|id| {
                matches!(
                    matches.value_source(id.as_str()),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
            })
            .map(|id| id.as_str().to_owned())
            .collect();
        Layers { cli, given }
    }

    /// The settings in force: the file (read now) under the flags and variables, `RUST_LOG`
    /// under `GOSSIPER_LOG_LEVEL`, and a node name required from one of them.
    pub fn resolve(&self, rust_log: Option<&str>) -> Result<AgentArgs, CliError> {
        let mut args = self.cli.clone();
        let mut level_from = "--log-level or GOSSIPER_LOG_LEVEL".to_owned();
        if let Some(path) = &self.cli.config {
            let file = read_file(path)?;
            if file.log_level.is_some() && !self.given.contains("log_level") {
                level_from = format!("`log-level` in {}", path.display());
            }
            file.merge_into(&mut args, &self.given, path);
        }
        if !self.given.contains("log_level")
            && let Some(filter) = rust_log.filter(|f| !f.trim().is_empty())
        {
            args.log_level = Some(filter.to_owned());
            level_from = "RUST_LOG".to_owned();
        }
        if let Some(filter) = &args.log_level {
            check_filter(filter).map_err(|e| {
                CliError::usage(format!("bad log level {filter:?} from {level_from}: {e}"))
            })?;
        }
        match &args.name {
            Some(name) if !name.is_empty() => {}
            _ => {
                return Err(CliError::usage(
                    "no node name: give --name NAME, GOSSIPER_NAME or `name` in the --config file",
                ));
            }
        }
        Ok(args)
    }
}

/// The log filter that `args` ask for.
pub fn log_filter(args: &AgentArgs) -> &str {
    args.log_level.as_deref().unwrap_or(DEFAULT_LOG_FILTER)
}

/// Checks a filter in `RUST_LOG`'s syntax (`LEVEL`, `MODULE`, `MODULE=LEVEL`, comma-separated),
/// which env_logger would otherwise half-apply with a warning.
pub fn check_filter(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = match directive.split_once('=') {
            Some((module, level)) => {
                if module.trim().is_empty() {
                    return Err(format!("{directive:?} names no module"));
                }
                level.trim()
            }
            None if directive
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '-') =>
            {
                continue; // a level or a module name
            }
            None => return Err(format!("{directive:?} is neither a level nor a module")),
        };
        if !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
            return Err(format!(
                "{level:?} is not a level (off, error, warn, info, debug, trace)"
            ));
        }
    }
    Ok(())
}

/// The file's keys: one per flag of [`AgentArgs`] but `--config` itself and the hidden
/// `--exit-with-stdin` (a test in this module holds that).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    name: Option<String>,
    bind: Option<String>,
    advertise: Option<String>,
    join: Option<Vec<String>>,
    api: Option<String>,
    api_token_file: Option<PathBuf>,
    api_allow_host: Option<Vec<String>>,
    api_max_connections: Option<usize>,
    api_max_parked: Option<usize>,
    api_header_timeout_ms: Option<Millis>,
    api_body_timeout_ms: Option<Millis>,
    api_write_timeout_ms: Option<Millis>,
    max_value_bytes: Option<usize>,
    cluster: Option<String>,
    key_file: Option<PathBuf>,
    insecure: Option<bool>,
    interval_ms: Option<Millis>,
    fanout: Option<u32>,
    mtu: Option<usize>,
    detector: Option<DetectorArg>,
    phi_threshold: Option<f64>,
    dead_grace_ms: Option<Millis>,
    tombstone_grace_ms: Option<Millis>,
    seed: Option<u64>,
    log_level: Option<String>,
    log_format: Option<LogFormat>,
    protocol: Option<crate::memberlist::Protocol>,
    tag: Option<Vec<String>>,
    query_response: Option<Vec<String>>,
    keyring_file: Option<PathBuf>,
    profile: Option<crate::memberlist::Profile>,
}

impl FileConfig {
    /// Sets every field of `args` that the file has and no flag or variable gave.
    fn merge_into(self, args: &mut AgentArgs, given: &BTreeSet<String>, path: &Path) {
        // Destructured whole: a key added to the file but not merged is an unused variable.
        let FileConfig {
            name,
            bind,
            advertise,
            join,
            api,
            api_token_file,
            api_allow_host,
            api_max_connections,
            api_max_parked,
            api_header_timeout_ms,
            api_body_timeout_ms,
            api_write_timeout_ms,
            max_value_bytes,
            cluster,
            key_file,
            insecure,
            interval_ms,
            fanout,
            mtu,
            detector,
            phi_threshold,
            dead_grace_ms,
            tombstone_grace_ms,
            seed,
            log_level,
            log_format,
            protocol,
            tag,
            query_response,
            keyring_file,
            profile,
        } = self;
        let dir = path.parent().unwrap_or(Path::new(""));
        let api_token_file = api_token_file.map(|p| dir.join(p));
        let key_file = key_file.map(|p| dir.join(p));
        let keyring_file = keyring_file.map(|p| dir.join(p));
        macro_rules! take {
            ($($field:ident),*) => {$(
                if let Some(v) = $field && !given.contains(stringify!($field)) {
                    args.$field = v.into();
                }
            )*};
        }
        macro_rules! take_optional {
            ($($field:ident),*) => {$(
                if let Some(v) = $field && !given.contains(stringify!($field)) {
                    args.$field = Some(v);
                }
            )*};
        }
        take!(
            bind,
            join,
            api,
            api_allow_host,
            api_max_connections,
            api_max_parked,
            api_header_timeout_ms,
            api_body_timeout_ms,
            api_write_timeout_ms,
            max_value_bytes,
            cluster,
            insecure,
            interval_ms,
            fanout,
            mtu,
            detector,
            phi_threshold,
            dead_grace_ms,
            tombstone_grace_ms,
            log_format,
            protocol,
            tag,
            query_response,
            profile
        );
        take_optional!(
            name,
            advertise,
            api_token_file,
            key_file,
            keyring_file,
            seed,
            log_level
        );
    }
}

/// Reads and checks the config file at `path`.
pub fn read_file(path: &Path) -> Result<FileConfig, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("cannot read config file {}: {e}", path.display())))?;
    parse_file(&text, path)
}

/// Parses a config file's text; `path` only names it in errors.
pub fn parse_file(text: &str, path: &Path) -> Result<FileConfig, CliError> {
    let file = path.display();
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| {
                format!(
                    " at line {}",
                    text[..s.start.min(text.len())].lines().count().max(1)
                )
            })
            .unwrap_or_default();
        CliError::usage(format!(
            "bad config file {file}{line}: {}",
            e.message().trim()
        ))
    })?;
    // Key by key, so that an error names its key (serde's type errors do not).
    for (key, value) in &table {
        let one = toml::Table::from_iter([(key.clone(), value.clone())]);
        if let Err(e) = toml::Value::Table(one).try_into::<FileConfig>() {
            let message = e.message().trim().to_owned();
            return Err(CliError::usage(if message.starts_with("unknown field") {
                format!(
                    "unknown key `{key}` in config file {file} (its keys are the long flags \
                     of `gossiper agent --help`, without the dashes)"
                )
            } else {
                format!("bad value for `{key}` in config file {file}: {message}")
            }));
        }
    }
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| CliError::usage(format!("bad config file {file}: {e}")))
}

/// A duration in milliseconds: an integer, or a string with a unit in the API's duration
/// grammar ([`gossiper_agent::parse_duration`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Millis(u64);

impl From<Millis> for u64 {
    fn from(m: Millis) -> u64 {
        m.0
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Millis;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "milliseconds as an integer, or a duration such as \"10s\" or \"500ms\"",
                )
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Millis, E> {
                Ok(Millis(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Millis, E> {
                u64::try_from(v)
                    .map(Millis)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Millis, E> {
                // A bare number would be seconds in that grammar: in a `-ms` key, say a unit.
                let has_unit = v.trim().ends_with(|c: char| c.is_ascii_alphabetic());
                match gossiper_agent::parse_duration(v) {
                    Some(d) if has_unit => {
                        Ok(Millis(d.as_millis().min(u128::from(u64::MAX)) as u64))
                    }
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        agent: AgentArgs,
    }

    fn layers(argv: &[&str]) -> Layers {
        let matches = Cmd::command()
            .try_get_matches_from(std::iter::once("agent").chain(argv.iter().copied()))
            .expect("parses");
        let cmd = Cmd::from_arg_matches(&matches).expect("builds");
        Layers::new(cmd.agent, &matches)
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gossiper-config-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    #[test]
    fn every_flag_has_a_file_key() {
        for arg in Cmd::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if ["config", "exit-with-stdin", "help", "version"].contains(&long) {
                continue;
            }
            // A value of some type: only "unknown key" would be the failure looked for.
            let text = format!("{long} = []");
            if let Err(e) = parse_file(&text, Path::new("t.toml")) {
                assert!(
                    !e.message.contains("unknown key"),
                    "--{long}: {}",
                    e.message
                );
            }
        }
    }

    #[test]
    fn the_example_config_parses_and_sets_what_it_says() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/gossiper.example.toml");
        let text = std::fs::read_to_string(&path).expect("docs/gossiper.example.toml");
        let file = parse_file(&text, &path).expect("the example parses");
        let mut args = layers(&[]).cli;
        file.merge_into(&mut args, &BTreeSet::new(), &path);
        assert_eq!(args.name.as_deref(), Some("web-1"));
        assert_eq!(args.join, ["seed-1.internal:7946", "seed-2.internal:7946"]);
        assert_eq!(args.interval_ms, 200);
        assert_eq!(args.api_header_timeout_ms, 10_000, "\"10s\" is 10,000 ms");
        assert!(
            args.key_file
                .as_ref()
                .expect("key-file")
                .ends_with("gossiper.keys")
        );
        check_filter(log_filter(&args)).expect("its log level is valid");
    }

    #[test]
    fn flags_beat_variables_beat_the_file_beats_defaults() {
        let dir = temp_dir("layers");
        let path = write(
            &dir,
            "a.toml",
            "name = \"from-file\"\nfanout = 5\nmtu = 1200\ninterval-ms = \"1s\"\nkey-file = \"k\"\n",
        );
        let path = path.to_str().expect("utf-8 path");
        let matches = Cmd::command()
            .try_get_matches_from(["agent", "--config", path, "--fanout", "7"])
            .expect("parses");
        let layers = Layers::new(
            Cmd::from_arg_matches(&matches).expect("builds").agent,
            &matches,
        );
        let args = layers.resolve(None).expect("resolves");
        assert_eq!(args.name.as_deref(), Some("from-file"));
        assert_eq!(args.fanout, 7, "the flag wins over the file");
        assert_eq!(args.mtu, 1200, "the file wins over the default");
        assert_eq!(args.interval_ms, 1_000);
        assert_eq!(
            args.bind, "127.0.0.1:7946",
            "the default stays where nothing says"
        );
        assert_eq!(
            args.key_file,
            Some(dir.join("k")),
            "relative to the file's folder"
        );
        // A variable is a given value too: the file does not override it.
        let mut given = layers.clone();
        given.given.insert("mtu".into());
        given.cli.mtu = 900;
        assert_eq!(given.resolve(None).expect("resolves").mtu, 900);
    }

    #[test]
    fn rust_log_sits_between_the_flag_and_the_file() {
        let dir = temp_dir("rustlog");
        let path = write(&dir, "b.toml", "name = \"n\"\nlog-level = \"debug\"\n");
        let path = path.to_str().expect("utf-8 path");
        let l = layers(&["--config", path]);
        assert_eq!(
            l.resolve(None).expect("ok").log_level.as_deref(),
            Some("debug")
        );
        assert_eq!(
            l.resolve(Some("trace")).expect("ok").log_level.as_deref(),
            Some("trace")
        );
        let l = layers(&["--config", path, "--log-level", "error"]);
        assert_eq!(
            l.resolve(Some("trace")).expect("ok").log_level.as_deref(),
            Some("error")
        );
    }

    #[test]
    fn bad_files_are_usage_errors_naming_the_key_and_the_file() {
        let p = Path::new("/etc/gossiper.toml");
        let cases = [
            ("fanot = 3", "unknown key `fanot`"),
            ("fanout = \"three\"", "bad value for `fanout`"),
            ("fanout = -1", "bad value for `fanout`"),
            ("interval-ms = \"200\"", "bad value for `interval-ms`"),
            ("interval-ms = \"soon\"", "bad value for `interval-ms`"),
            ("interval-ms = -5", "bad value for `interval-ms`"),
            ("detector = \"gut-feeling\"", "bad value for `detector`"),
            ("join = \"a:1\"", "bad value for `join`"),
            ("insecure = \"yes\"", "bad value for `insecure`"),
            ("config = \"other.toml\"", "unknown key `config`"),
            ("name = ", "bad config file /etc/gossiper.toml at line 1"),
            ("[agent]\nname = \"x\"", "unknown key `agent`"),
        ];
        for (text, needle) in cases {
            let e = parse_file(text, p).expect_err(text);
            assert_eq!(e.status, crate::ExitStatus::Usage, "{text}");
            assert!(e.message.contains(needle), "{text}: {}", e.message);
            assert!(
                e.message.contains("/etc/gossiper.toml"),
                "{text}: {}",
                e.message
            );
            assert!(!e.message.contains('\n'), "one line: {}", e.message);
        }
    }

    #[test]
    fn a_missing_file_a_missing_name_and_a_bad_log_level_are_usage_errors() {
        let l = layers(&["--config", "/nonexistent/gossiper.toml"]);
        let e = l.resolve(None).expect_err("missing file");
        assert!(
            e.message.contains("cannot read config file"),
            "{}",
            e.message
        );
        let e = layers(&[]).resolve(None).expect_err("no name");
        assert!(e.message.contains("no node name"), "{}", e.message);
        let e = layers(&["--name", "a", "--log-level", "info,x=loud"])
            .resolve(None)
            .expect_err("bad level");
        assert!(
            e.message.contains("\"loud\" is not a level"),
            "{}",
            e.message
        );
        assert!(e.message.contains("--log-level"), "{}", e.message);
    }

    #[test]
    fn filters_in_rust_log_syntax_are_checked() {
        for good in [
            "info",
            "warn,gossiper_agent=info",
            "gossiper_cluster::swim=TRACE",
            "off",
            "",
        ] {
            check_filter(good).expect(good);
        }
        for bad in ["=info", "x=verbose", "info/regex", "a b"] {
            check_filter(bad).expect_err(bad);
        }
    }
}
