//! `mkv [flags] server|rebuild|rebalance|verify|migrate|dev`.

use std::process::ExitCode;

use clap::Parser;
use mkv::config::{normalize, Cli, Command, LogFormat};
use mkv::error::ToolError;
use mkv::tools;

fn main() -> ExitCode {
    let args = match normalize(std::env::args_os()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("mkv: {e}");
            return ExitCode::from(2);
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    http1::runtime::init_logging(cli.log.log_format == LogFormat::Json);
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("mkv: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs the command; its exit code (`verify` has several).
fn run(cli: &Cli) -> Result<u8, ToolError> {
    let verbose = cli.log.verbose;
    match &cli.command {
        Command::Server(args) => {
            let cluster = args.cluster.cluster(Some(&args.values), verbose);
            tools::serve::run(args, cluster.map_err(ToolError::Usage)?)?;
        }
        Command::Rebuild(args) => {
            let cluster = args.cluster.cluster(None, verbose);
            tools::rebuild::run(&cluster.map_err(ToolError::Usage)?, args)?;
        }
        Command::Rebalance(args) => {
            let cluster = args.tool.cluster.cluster(None, verbose);
            tools::rebalance::run(&cluster.map_err(ToolError::Usage)?, args)?;
        }
        Command::Verify(args) => {
            let cluster = args.tool.cluster.cluster(None, verbose);
            return tools::verify::run(&cluster.map_err(ToolError::Usage)?, args);
        }
        Command::Migrate(args) => tools::migrate::run(args)?,
        Command::Dev(args) => tools::dev::run(args, verbose)?,
    }
    Ok(0)
}
