//! `trailguard`: the command-line front end. A thin layer over the library
//! crates: it parses arguments, wires source → decode → normalize → enrich
//! → batch → rules → alerts, and reports what happened.

mod bench;
mod cli;
mod docs;
mod generate;
mod kafka;
mod new_rule;
mod report;
mod rules;
mod run;
mod settings;
mod sigma;
mod sigma_check;
mod signing;
mod sink;
mod style;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Usage errors exit 1 like every other failure (clap's own default is
    // 2, which `run` uses for a quarantined rule); --help and --version 0.
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { run::EXIT_ERROR } else { 0 });
        }
    };
    let result = match args.command {
        cli::Command::Run(run_args) => run::run(*run_args),
        cli::Command::Asn(cli::AsnCommand::Import(a)) => cli::asn_import(a),
        cli::Command::Asn(cli::AsnCommand::Lookup(a)) => cli::asn_lookup(a),
        cli::Command::Rules(cli::RulesCommand::List(a)) => rules::list(a),
        cli::Command::Rules(cli::RulesCommand::Inspect(a)) => rules::inspect(a),
        cli::Command::Sigma(cli::SigmaCommand::Check(a)) => sigma_check::check(a),
        cli::Command::NewRule(a) => new_rule::new_rule(a),
        cli::Command::Gen(a) => generate::run(a),
        cli::Command::Bench(a) => bench::run(a),
        cli::Command::Rules(cli::RulesCommand::Keygen(a)) => signing::keygen(a),
        cli::Command::Rules(cli::RulesCommand::Sign(a)) => signing::sign(a),
        cli::Command::Rules(cli::RulesCommand::Verify(a)) => signing::verify(a),
        cli::Command::Config(cli::ConfigCommand::Check(a)) => settings::check(a),
        cli::Command::Report(a) => report::command(a),
        cli::Command::Publish(a) => kafka::publish(a),
        cli::Command::Completions(a) => docs::completions(a),
        cli::Command::Man(a) => docs::man(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            anstream::eprintln!(
                "trailguard: {}: {}",
                style::error_label(),
                style::printable(&format!("{e:#}"))
            );
            ExitCode::from(run::EXIT_ERROR)
        }
    }
}
