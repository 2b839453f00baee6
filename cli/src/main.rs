//! `securesign`: the SecureSign core on the command line, for desktops and field batches.

mod args;
mod batch;
mod commands;
mod interrupt;
mod output;
mod pin_input;
mod piv;
mod portal;
mod signature_files;

use std::process::ExitCode;

use clap::Parser;

use args::Cli;
use output::Printer;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer::new(cli.global.json);
    match commands::run(cli, printer) {
        Ok(commands::Done::Success) => ExitCode::SUCCESS,
        Ok(commands::Done::FailureReported) => ExitCode::FAILURE,
        Err(err) => {
            printer.error(&err);
            ExitCode::FAILURE
        }
    }
}
