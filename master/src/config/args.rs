//! Go-style arguments made clap's: `-name` becomes `--name`, `-flag false`
//! becomes `--flag=false`, and flags given before the command (the
//! original's order) move after it, where each command's flags are.

use std::ffi::OsString;

/// Flags that take a value.
const VALUE_FLAGS: &[&str] = &[
    "port",
    "bind",
    "db",
    "volumes",
    "replicas",
    "subvolumes",
    "fallback",
    "voltimeout",
    "volume-timeout",
    "idle-timeout",
    "max-connections",
    "threads",
    "dir",
    "concurrency",
    "s3-port",
    "s3-credentials",
    "admin-port",
    "census-every",
    "log-format",
    "grace",
    "from",
    "to",
];

/// Flags that are true or false (`-flag`, `-flag=false`, `-flag false`).
const BOOL_FLAGS: &[&str] = &["protect", "md5sum", "v", "dry-run", "repair", "quick"];

const COMMANDS: &[&str] = &[
    "server",
    "rebuild",
    "rebalance",
    "verify",
    "migrate",
    "dev",
    "help",
];

/// Rewrites `args` (the program name first) for clap; an unknown
/// single-dash flag is an error that names the nearest known one.
pub fn normalize(args: impl IntoIterator<Item = OsString>) -> Result<Vec<OsString>, String> {
    let mut args = args.into_iter();
    let program = args.next().unwrap_or_else(|| "mkv".into());
    let rest: Vec<OsString> = args.collect();
    let mut out: Vec<OsString> = Vec::new();
    let mut command: Option<OsString> = None;
    let mut i = 0;
    while i < rest.len() {
        let arg = &rest[i];
        i += 1;
        let Some(text) = arg.to_str() else {
            out.push(arg.clone());
            continue;
        };
        if text == "--" {
            out.extend(rest[i - 1..].iter().cloned());
            break;
        }
        if !text.starts_with('-') || text == "-" {
            if command.is_none() && COMMANDS.contains(&text) {
                command = Some(arg.clone());
            } else {
                out.push(arg.clone());
            }
            continue;
        }
        i += flag(text, rest.get(i), &mut out)?;
    }
    let mut all = vec![program];
    all.extend(command);
    all.extend(out);
    Ok(all)
}

/// Rewrites the flag `text` (followed by `next`) into `out`; how many
/// arguments after it it took (its value).
fn flag(text: &str, next: Option<&OsString>, out: &mut Vec<OsString>) -> Result<usize, String> {
    let (name, value) = match text.trim_start_matches('-').split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (text.trim_start_matches('-'), None),
    };
    let known = VALUE_FLAGS.contains(&name) || BOOL_FLAGS.contains(&name);
    if !known {
        let single = !text.starts_with("--");
        if single && name.len() > 1 && !matches!(name, "help" | "version") {
            return Err(unknown(text, name));
        }
        out.push(text.into());
        return Ok(0);
    }
    let flag = format!("--{name}");
    match (value, next) {
        (Some(v), _) => out.push(format!("{flag}={v}").into()),
        (None, next) if BOOL_FLAGS.contains(&name) => {
            // `-md5sum false`: Go would take `false` for a command.
            match next.and_then(|a| a.to_str()) {
                Some(b @ ("true" | "false")) => {
                    out.push(format!("{flag}={b}").into());
                    return Ok(1);
                }
                _ => out.push(flag.into()),
            }
        }
        (None, Some(v)) => {
            out.extend([flag.into(), v.clone()]);
            return Ok(1);
        }
        (None, None) => out.push(flag.into()),
    }
    Ok(0)
}

/// The message for an unknown `-name`.
fn unknown(text: &str, name: &str) -> String {
    let near = VALUE_FLAGS
        .iter()
        .chain(BOOL_FLAGS)
        .filter(|k| k.len() > 1)
        .map(|k| (distance(name, k), *k))
        .min();
    match near {
        Some((d, k)) if d <= 2 => format!("unknown flag {text} (did you mean -{k}?)"),
        _ => format!("unknown flag {text} (mkv --help lists the flags)"),
    }
}

/// Levenshtein distance, for suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
