//! `mkv [flags] server|rebuild|rebalance|dev`.

use std::process::ExitCode;

use clap::Parser;
use mkv::config::{normalize_args, Cli, Command};
use mkv::error::ToolError;
use mkv::tools;

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(normalize_args(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    http1::runtime::init_logging();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mkv: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: &Cli) -> Result<(), ToolError> {
    let flags = &cli.flags;
    let cluster = || flags.cluster().map_err(ToolError::Usage);
    match &cli.command {
        Command::Server => tools::serve::run(flags, cluster()?),
        Command::Rebuild(args) => tools::rebuild::run(&cluster()?, args),
        Command::Rebalance(args) => tools::rebalance::run(&cluster()?, args),
        Command::Dev(args) => tools::dev::run(flags, args),
    }
}
