//! `authbridge-test-cmd`: a stand-in provider auth command that behaves the same on every
//! platform (the e2e suite runs it under Linux and, cross-built, under wine).
//!
//! ```text
//! authbridge-test-cmd print <token>            print the token and exit 0
//! authbridge-test-cmd count <file> <prefix>    add 1 to the number in <file>; print <prefix><n>
//! authbridge-test-cmd once <file> <token>     first run: print the token, create <file>;
//!                                              later runs (the file exists): hang
//! authbridge-test-cmd fail <code> <message>    print the message on stderr, exit with <code>
//! authbridge-test-cmd hang                     never exit (gives up after 10 minutes)
//! authbridge-test-cmd flood <stdout|stderr> <bytes>   write that many bytes, then exit 0
//! authbridge-test-cmd lock <file>             take an exclusive lock on <file> (created if
//!                                              missing), print `locked`, hold it until
//!                                              stdin closes
//! authbridge-test-cmd tree <host:port>         start a child that connects to <host:port>
//!                                              and holds the connection, then hang
//! ```
//! `tree` lets a test see the whole tree die: the child's connection closes only when the
//! child is gone.

#![allow(clippy::print_stdout)] // printing the token is this tool's interface

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

const GIVE_UP: Duration = Duration::from_secs(600);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    match arg(0) {
        "print" => {
            println!("{}", arg(1));
            ExitCode::SUCCESS
        }
        "count" => {
            let n = std::fs::read_to_string(arg(1))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(0)
                + 1;
            if std::fs::write(arg(1), n.to_string()).is_err() {
                return ExitCode::from(9);
            }
            println!("  {}{n}  ", arg(2));
            ExitCode::SUCCESS
        }
        "once" => {
            // The first run prints the token and leaves a mark; every later run hangs.
            if std::fs::metadata(arg(1)).is_ok() {
                std::thread::sleep(GIVE_UP);
                return ExitCode::FAILURE;
            }
            if std::fs::write(arg(1), "ran").is_err() {
                return ExitCode::from(9);
            }
            println!("{}", arg(2));
            ExitCode::SUCCESS
        }
        "fail" => {
            eprintln!("{}", arg(2));
            ExitCode::from(arg(1).parse::<u8>().unwrap_or(1))
        }
        "hang" => {
            std::thread::sleep(GIVE_UP);
            ExitCode::FAILURE
        }
        "flood" => {
            let bytes: usize = arg(2).parse().unwrap_or(0);
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = bytes;
            let mut out: Box<dyn Write> = if arg(1) == "stderr" {
                Box::new(std::io::stderr().lock())
            } else {
                Box::new(std::io::stdout().lock())
            };
            while left > 0 {
                let n = left.min(chunk.len());
                if out.write_all(&chunk[..n]).is_err() {
                    return ExitCode::FAILURE;
                }
                left -= n;
            }
            ExitCode::SUCCESS
        }
        "lock" => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(arg(1));
            let Ok(file) = file else {
                return ExitCode::FAILURE;
            };
            if file.lock().is_err() {
                return ExitCode::FAILURE;
            }
            println!("locked");
            let _ = std::io::stdout().flush();
            let _ = std::io::stdin().read(&mut [0u8; 1]);
            drop(file);
            ExitCode::SUCCESS
        }
        "tree" => {
            let me = match std::env::current_exe() {
                Ok(me) => me,
                Err(_) => return ExitCode::FAILURE,
            };
            let child = std::process::Command::new(me)
                .args(["hold", arg(1)])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
            if child.is_err() {
                return ExitCode::FAILURE;
            }
            std::thread::sleep(GIVE_UP);
            ExitCode::FAILURE
        }
        "hold" => {
            let Ok(mut conn) = std::net::TcpStream::connect(arg(1)) else {
                return ExitCode::FAILURE;
            };
            let _ = conn.set_read_timeout(Some(GIVE_UP));
            let _ = conn.read(&mut [0u8; 1]);
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("authbridge-test-cmd: unknown mode {other:?}");
            ExitCode::from(2)
        }
    }
}
