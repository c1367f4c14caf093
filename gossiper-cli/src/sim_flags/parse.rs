//! The small grammars of the simulators' flags: durations, intervals, latencies, node sets,
//! partitions, crashes and churn, read once for `simulate`, `simulate-cluster` and the demo.

use gossiper_sim::{Churn, Crash, Latency, NodeSet, Partition, SimInterval};

fn parse_num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.trim().parse().map_err(|_| format!("bad {what} '{s}'"))
}

/// The command line's one duration grammar: a number and a unit, `us`, `ms`, `s`, `m` or `h`
/// (`250us`, `10ms`, `1.5s`, `2m`, `1h`), or `0`; in microseconds. `simulate`,
/// `simulate-cluster` and the demo's `--max-duration` ([`parse_seconds`]) all read it.
pub(crate) fn parse_duration_us(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, scale) = if let Some(v) = s.strip_suffix("us") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1e3)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1e6)
    } else if let Some(v) = s.strip_suffix('m') {
        (v, 60e6)
    } else if let Some(v) = s.strip_suffix('h') {
        (v, 3_600e6)
    } else if s == "0" {
        ("0", 1.0)
    } else {
        return Err(format!("duration '{s}' needs a unit: us, ms, s, m or h"));
    };
    let v: f64 = parse_num(num, "duration")?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(format!("duration '{s}' must be non-negative"));
    }
    Ok((v * scale).round() as u64)
}

/// A duration in the grammar of [`parse_duration_us`] (`5s`, `500ms`), as a [`Duration`]: what
/// the client commands' `--timeout` takes.
pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    parse_duration_us(s).map(std::time::Duration::from_micros)
}

/// A duration in seconds: the grammar of [`parse_duration_us`], or a bare number of seconds
/// (what the demo's `--max-duration` has always taken).
pub(crate) fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(secs) => Ok(secs),
        Err(_) => parse_duration_us(s).map(|us| us as f64 / 1e6),
    }
}

fn parse_range_us(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("'{s}' should be MIN..MAX"))?;
    let (a, b) = (parse_duration_us(a)?, parse_duration_us(b)?);
    if a > b {
        return Err(format!("'{s}': min is above max"));
    }
    Ok((a, b))
}

pub(crate) fn parse_interval(s: &str) -> Result<SimInterval, String> {
    let to_u32 = |us: u64| {
        u32::try_from(us)
            .ok()
            .filter(|&u| u > 0)
            .ok_or_else(|| format!("interval '{s}' must be between 1us and about 71 minutes"))
    };
    match s.split_once(':') {
        Some(("fixed", d)) => Ok(SimInterval::Fixed {
            us: to_u32(parse_duration_us(d)?)?,
        }),
        Some(("exp", d)) => Ok(SimInterval::Exp {
            mean_us: to_u32(parse_duration_us(d)?)?,
        }),
        // `jitter` is the demo's name for the same interval.
        Some(("uniform" | "jitter", r)) => {
            let (a, b) = parse_range_us(r)?;
            Ok(SimInterval::Uniform {
                min_us: to_u32(a)?,
                max_us: to_u32(b)?,
            })
        }
        _ => Err(format!(
            "bad interval '{s}': use fixed:100ms, uniform:50ms..150ms or exp:100ms"
        )),
    }
}

pub(crate) fn parse_latency(s: &str) -> Result<Latency, String> {
    if s == "0" || s == "zero" {
        return Ok(Latency::Zero);
    }
    match s.split_once(':') {
        Some(("fixed", d)) => Ok(Latency::Fixed {
            us: parse_duration_us(d)?,
        }),
        Some(("exp", d)) => Ok(Latency::Exp {
            mean_us: parse_duration_us(d)?,
        }),
        Some(("uniform", r)) => {
            let (min_us, max_us) = parse_range_us(r)?;
            Ok(Latency::Uniform { min_us, max_us })
        }
        _ => Err(format!(
            "bad latency '{s}': use 0, fixed:10ms, uniform:5ms..20ms or exp:10ms"
        )),
    }
}

fn parse_rounds(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("'{s}' should be FROM..UNTIL (rounds)"))?;
    Ok((parse_num(a, "round")?, parse_num(b, "round")?))
}

fn parse_nodes(s: &str) -> Result<NodeSet, String> {
    let mut ranges = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (parse_num(a, "node id")?, parse_num(b, "node id")?),
            None => {
                let v = parse_num(part, "node id")?;
                (v, v)
            }
        };
        ranges.push((a, b));
    }
    Ok(NodeSet(ranges))
}

pub(crate) fn parse_partition(s: &str) -> Result<Partition, String> {
    let (rounds, groups) = s
        .split_once(':')
        .ok_or_else(|| format!("bad partition '{s}': use FROM..UNTIL:GROUPS, e.g. 5..20:0-499"))?;
    let (from, until) = parse_rounds(rounds)?;
    let groups = groups
        .split('/')
        .map(parse_nodes)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Partition {
        from,
        until,
        groups,
    })
}

pub(crate) fn parse_crash(s: &str) -> Result<Crash, String> {
    let mut parts = s.split(':');
    let when = parts.next().unwrap_or_default();
    let nodes = parts
        .next()
        .ok_or_else(|| format!("bad crash '{s}': use AT[..RESTART]:NODES[:keep|lose]"))?;
    let keep_state = match parts.next() {
        None | Some("keep") => true,
        Some("lose") => false,
        Some(other) => return Err(format!("bad crash '{s}': '{other}' is not keep or lose")),
    };
    if parts.next().is_some() {
        return Err(format!("bad crash '{s}': too many ':'"));
    }
    let (at, restart) = match when.split_once("..") {
        Some((a, r)) => (parse_num(a, "round")?, Some(parse_num(r, "round")?)),
        None => (parse_num(when, "round")?, None),
    };
    Ok(Crash {
        at,
        restart,
        nodes: parse_nodes(nodes)?,
        keep_state,
    })
}

pub(crate) fn parse_churn(s: &str) -> Result<Churn, String> {
    let (rate, rounds) = s
        .split_once(':')
        .ok_or_else(|| format!("bad churn '{s}': use RATE:FROM..UNTIL, e.g. 0.01:0..20"))?;
    let (from, until) = parse_rounds(rounds)?;
    Ok(Churn {
        rate: parse_num(rate, "churn rate")?,
        from,
        until,
    })
}
