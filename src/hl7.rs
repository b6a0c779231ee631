//! `mss hl7`: HL7 v2 over MLLP for integration engineers (docs/mssante.md H3). `send` sends one
//! message file and prints the acknowledgement.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use mss_hl7::Message;
use mss_hl7::ack::AckCode;
use mss_hl7::mllp::{ClientOptions, MllpClient};

#[derive(Debug, Subcommand)]
pub enum Hl7Command {
    /// Send one HL7 v2 message (ER7 file; segments may end with line feeds) over MLLP and print the
    /// acknowledgement; exit status 0 on AA, 3 on AE/AR.
    Send(SendArgs),
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The message file.
    pub file: PathBuf,
    /// The MLLP listener, `HOST:PORT`.
    #[arg(long, value_name = "HOST:PORT")]
    pub to: String,
    /// Seconds to wait for the acknowledgement.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Sends in all when the connection breaks or no answer comes (the same bytes, same MSH-10).
    #[arg(long, default_value_t = 3)]
    pub attempts: u32,
}

pub fn run(_data_flag: Option<PathBuf>, cmd: Hl7Command) -> Result<()> {
    match cmd {
        Hl7Command::Send(args) => send(args),
    }
}

fn send(args: SendArgs) -> Result<()> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let message =
        Message::parse(&bytes).with_context(|| format!("{} is not HL7 v2", args.file.display()))?;
    let options = ClientOptions {
        ack_timeout: Duration::from_secs(args.timeout),
        attempts: args.attempts.max(1),
        ..ClientOptions::default()
    };
    let runtime = crate::runtime::current_thread()?;
    let (ack, read) =
        runtime.block_on(async { MllpClient::new(&args.to, options).send(&message).await })?;
    println!("{}", ack.to_text().trim_end().replace('\r', "\n"));
    if read.code != AckCode::AA {
        std::process::exit(3);
    }
    Ok(())
}
