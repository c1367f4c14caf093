//! The process's logger: env_logger's filters and formats behind a lock, so the filter can
//! change while the program runs (the agent's SIGHUP), which env_logger alone cannot do.
//!
//! [`init`] installs it once; [`set_filter`] swaps in a logger built with a new filter and
//! moves `log`'s global maximum level with it, so disabled levels stay as cheap as before.

use std::sync::OnceLock;

use parking_lot::RwLock;

use crate::agent::LogFormat;

/// The installed logger: the current env_logger and the format it was built with.
struct Reloadable {
    current: RwLock<env_logger::Logger>,
    format: LogFormat,
}

impl log::Log for Reloadable {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.current.read().enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        // env_logger's own `log` applies its filter first.
        self.current.read().log(record);
    }

    fn flush(&self) {
        self.current.read().flush();
    }
}

static LOGGER: OnceLock<Reloadable> = OnceLock::new();

/// An env_logger writing to stderr, filtered by `filter` (`RUST_LOG`'s syntax).
fn build(filter: &str, format: LogFormat) -> env_logger::Logger {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(filter);
    match format {
        LogFormat::Text => {
            builder.format_timestamp_millis();
        }
        LogFormat::Json => {
            builder.format(|buf, record| {
                use std::io::Write;
                let line = serde_json::json!({
                    "ts": buf.timestamp_millis().to_string(),
                    "level": record.level().as_str(),
                    "target": record.target(),
                    "msg": record.args().to_string(),
                });
                writeln!(buf, "{line}")
            });
        }
    }
    builder.build()
}

/// Installs the logger with `filter`, as text or as one JSON object a line (`{"ts", "level",
/// "target", "msg"}`). Only the first call in a process installs; later ones change nothing.
pub fn init(filter: &str, format: LogFormat) {
    let logger = build(filter, format);
    let max = logger.filter();
    let mut installed = false;
    let reloadable = LOGGER.get_or_init(|| {
        installed = true;
        Reloadable {
            current: RwLock::new(logger),
            format,
        }
    });
    if installed && log::set_logger(reloadable).is_ok() {
        log::set_max_level(max);
    }
}

/// Filters log lines with `filter` from now on. Returns false (changing nothing) when
/// [`init`] has not installed the logger.
pub fn set_filter(filter: &str) -> bool {
    let Some(reloadable) = LOGGER.get() else {
        return false;
    };
    let logger = build(filter, reloadable.format);
    let max = logger.filter();
    *reloadable.current.write() = logger;
    log::set_max_level(max);
    true
}
