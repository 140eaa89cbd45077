use std::ffi::OsString;
use std::time::Duration;

use clap::Parser;

use super::*;

fn parse(args: &[&str]) -> Result<Cli, String> {
    let args = normalize(args.iter().map(OsString::from))?;
    Cli::try_parse_from(args).map_err(|e| e.to_string())
}

fn server(cli: Cli) -> ServerArgs {
    match cli.command {
        Command::Server(a) => a,
        other => panic!("not server: {other:?}"),
    }
}

#[test]
fn originals_readme_command() {
    let cli = parse(&[
        "mkv",
        "-volumes",
        "localhost:3001,localhost:3002",
        "-db",
        "/tmp/indexdb/",
        "server",
    ])
    .unwrap();
    let c = server(cli).cluster.cluster(None, false).unwrap_err();
    assert!(c.contains("2 volume(s) cannot hold 3 replicas"), "{c}");
    let cli = parse(&[
        "mkv",
        "-volumes=a:1,b:2,c:3",
        "-db=/x",
        "-replicas",
        "2",
        "-md5sum=false",
        "-protect",
        "-v",
        "server",
    ])
    .unwrap();
    let verbose = cli.log.verbose;
    let args = server(cli);
    let c = args.cluster.cluster(Some(&args.values), verbose).unwrap();
    assert_eq!(c.volumes, ["a:1", "b:2", "c:3"]);
    assert_eq!(
        (c.replicas, c.md5sum, c.protect, c.verbose),
        (2, false, true, true)
    );
    assert_eq!(c.voltimeout, Duration::from_secs(1));
}

#[test]
fn double_dash_and_flags_after_the_command() {
    let cli = parse(&[
        "mkv",
        "server",
        "--volumes",
        "a:1",
        "--db",
        "/x",
        "--replicas=1",
        "--voltimeout",
        "250ms",
    ])
    .unwrap();
    let args = server(cli);
    let c = args.cluster.cluster(None, false).unwrap();
    assert_eq!((c.replicas, c.voltimeout), (1, Duration::from_millis(250)));
    assert_eq!(args.listen.port, 3000);
}

#[test]
fn a_bool_flag_then_its_value() {
    let cli = parse(&[
        "mkv", "-md5sum", "false", "-volumes", "a:1", "-db", "x", "server",
    ])
    .unwrap();
    assert!(!server(cli).values.md5sum);
    let cli = parse(&[
        "mkv", "-protect", "true", "-volumes", "a:1", "-db", "x", "server",
    ])
    .unwrap();
    assert!(server(cli).values.protect);
}

#[test]
fn a_mistyped_flag_names_the_right_one() {
    let e = parse(&["mkv", "-volume", "a:1", "-db", "x", "server"]).unwrap_err();
    assert_eq!(e, "unknown flag -volume (did you mean -volumes?)");
    let e = parse(&["mkv", "-dbb", "x", "server"]).unwrap_err();
    assert_eq!(e, "unknown flag -dbb (did you mean -db?)");
    let e = parse(&["mkv", "-zzzzzzzz", "server"]).unwrap_err();
    assert!(e.contains("mkv --help lists the flags"), "{e}");
}

#[test]
fn required_flags_and_flags_per_command() {
    let e = parse(&["mkv", "-volumes", "a:1", "server"]).unwrap_err();
    assert!(e.contains("--db <DB>"), "{e}");
    // The tools take the server's flags (the original had one set) ...
    let cli = parse(&[
        "mkv",
        "-port",
        "0",
        "-md5sum=false",
        "-volumes",
        "a:1",
        "-db",
        "x",
        "-replicas",
        "1",
        "rebuild",
    ])
    .unwrap();
    assert!(matches!(cli.command, Command::Rebuild(_)));
    // ... but a tool's flag is not the server's.
    assert!(parse(&["mkv", "-volumes", "a:1", "-db", "x", "--dry-run", "server"]).is_err());
    // dev takes no cluster.
    assert!(parse(&["mkv", "dev", "--db", "x"]).is_err());
    let cli = parse(&["mkv", "dev", "--port", "4000"]).unwrap();
    assert!(matches!(
        cli.command,
        Command::Dev(DevArgs { port: 4000, .. })
    ));
}

/// `mkv ARGS -volumes a:1 -db x server`, parsed.
fn serve_with(args: &[&str]) -> Result<Cli, String> {
    let mut all = vec!["mkv"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-volumes", "a:1", "-db", "x", "server"]);
    parse(&all)
}

#[test]
fn clear_errors() {
    assert!(
        parse(&["mkv", "-db", "/x"]).is_err(),
        "a command is required"
    );
    assert!(serve_with(&["-port", "notanumber"]).is_err());
    assert!(serve_with(&["-voltimeout", "5"]).is_err());
    for (volumes, why) in [("a:1,a:1", "listed twice"), ("a:1,", "is not a host:port")] {
        let cli = parse(&[
            "mkv",
            "-volumes",
            volumes,
            "-db",
            "x",
            "-replicas",
            "1",
            "server",
        ]);
        let e = server(cli.unwrap())
            .cluster
            .cluster(None, false)
            .unwrap_err();
        assert!(e.contains(why), "{e}");
    }
}

#[test]
fn log_format() {
    let cli = serve_with(&["--log-format", "json"]).unwrap();
    assert_eq!(cli.log.log_format, LogFormat::Json);
    assert!(serve_with(&["--log-format", "xml"]).is_err());
}
