//! The IKEv2 daemon and its management client.
//!
//! `iked run CONFIG.toml` runs the daemon; `iked ctl SOCKET COMMAND...` sends one management
//! command (list, stats, initiate PEER, terminate SPI, terminate-child SPI SPI) and prints the
//! JSON answer.
use control::daemon::{self, config::DaemonConfig};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") if args.len() == 2 => match DaemonConfig::load(args[1].as_ref()) {
            Ok(config) => match daemon::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("iked: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("iked: configuration {}: {e}", args[1]);
                ExitCode::from(2)
            }
        },
        Some("check") if args.len() == 2 => match DaemonConfig::load(args[1].as_ref()) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("iked: configuration {}: {e}", args[1]);
                ExitCode::from(2)
            }
        },
        Some("ctl") if args.len() >= 3 => {
            let result = UnixStream::connect(&args[1]).and_then(|mut stream| {
                writeln!(stream, "{}", args[2..].join(" "))?;
                let mut answer = String::new();
                BufReader::new(stream).read_line(&mut answer)?;
                Ok(answer)
            });
            match result {
                Ok(answer) => {
                    print!("{answer}");
                    if answer.starts_with("{\"error\"") {
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => {
                    eprintln!("iked: {}: {e}", args[1]);
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("usage: iked run CONFIG | iked check CONFIG | iked ctl SOCKET COMMAND...");
            ExitCode::from(2)
        }
    }
}
