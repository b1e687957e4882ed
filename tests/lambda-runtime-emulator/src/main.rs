//! `lambda-runtime-emulator`: serve the Lambda Runtime API, optionally start
//! a function binary, invoke each `--event` file in order and print every
//! outcome as one JSON line on stdout.
//!
//! ```text
//! lambda-runtime-emulator --listen 127.0.0.1:9001 --event fixtures/sqs-event.json
//!     # then, elsewhere: AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 AWS_LAMBDA_FUNCTION_NAME=f \
//!     #   AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 target/debug/my-fn
//! lambda-runtime-emulator --exec target/debug/my-fn --event a.json --event b.json
//! lambda-runtime-emulator --exec target/debug/my-fn --serve   # curl -d @a.json \
//!     #   127.0.0.1:9001/2015-03-31/functions/function/invocations
//! ```
//!
//! Exit status: 0 when every event got a response, 1 when any got an error,
//! an init error or a timeout, 2 on a usage or start-up failure.

use std::{
    io::{BufRead as _, Write as _},
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use anyhow::Context as _;
use clap::Parser;
use lambda_runtime_emulator::{
    EmulatorConfig, FunctionConfig, LambdaProcess, Outcome, RuntimeEmulator,
};
use serde_json::{Value, json};

/// Serve the Lambda Runtime API and invoke events against a function.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address of the Runtime API (the value for AWS_LAMBDA_RUNTIME_API).
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: SocketAddr,
    /// An event file to invoke, in order; repeat for more. `-` reads one JSON
    /// event per line from stdin.
    #[arg(long = "event", value_name = "FILE")]
    events: Vec<PathBuf>,
    /// A Lambda binary to start with the Lambda environment (its output goes
    /// to stderr). Without it, start the function yourself.
    #[arg(long, value_name = "BINARY")]
    exec: Option<PathBuf>,
    /// Extra environment for --exec, as KEY=VALUE; repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// The function timeout in seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// AWS_LAMBDA_FUNCTION_NAME and the ARN's function name.
    #[arg(long, default_value = "spark-gateway-test")]
    function_name: String,
    /// AWS_REGION and the ARN's region.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// AWS_LAMBDA_FUNCTION_MEMORY_SIZE.
    #[arg(long, default_value_t = 128)]
    memory_mb: u32,
    /// Keep serving after the events (for the Invoke API route) until Ctrl-C.
    /// Implied when no --event is given.
    #[arg(long)]
    serve: bool,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("lambda-runtime-emulator: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the CLI; `Ok(false)` when some invocation did not get a response.
async fn run(args: Args) -> anyhow::Result<bool> {
    let timeout = Duration::try_from_secs_f64(args.timeout).context("--timeout")?;
    let emulator = RuntimeEmulator::start_with(EmulatorConfig {
        listen: args.listen,
        function: FunctionConfig {
            name: args.function_name.clone(),
            region: args.region.clone(),
            memory_mb: args.memory_mb,
            timeout,
            ..FunctionConfig::default()
        },
        ..EmulatorConfig::default()
    })
    .await?;
    eprintln!(
        "lambda-runtime-emulator: Runtime API on http://{0} (AWS_LAMBDA_RUNTIME_API={0})",
        emulator.runtime_api()
    );
    let mut process = match &args.exec {
        Some(binary) => Some(
            LambdaProcess::builder(binary)
                .envs(args.env.iter().cloned())
                .forward_output(true)
                .spawn(&emulator)?,
        ),
        None => None,
    };

    let mut all_ok = true;
    for (source, event) in events(&args.events)? {
        let result = match process.as_mut() {
            Some(p) => p.invoke(event, timeout).await,
            None => emulator.invoke(event, timeout).await,
        };
        let line = match result {
            Ok(invocation) => {
                all_ok &= matches!(
                    invocation.outcome,
                    Outcome::Response { .. } | Outcome::RawResponse { .. } | Outcome::Streamed(_)
                );
                let mut line = serde_json::to_value(&invocation)?;
                line["source"] = json!(source);
                line
            }
            Err(error) => {
                all_ok = false;
                json!({"source": source, "outcome": "emulator_error", "message": format!("{error:#}")})
            }
        };
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")?;
        stdout.flush()?;
    }

    if args.serve || args.events.is_empty() {
        eprintln!(
            "lambda-runtime-emulator: serving; invoke with POST http://{}/2015-03-31/functions/function/invocations, Ctrl-C to stop",
            emulator.runtime_api()
        );
        tokio::signal::ctrl_c().await?;
    }
    if let Some(p) = process.as_mut() {
        p.kill().await?;
    }
    emulator.shutdown().await;
    Ok(all_ok)
}

/// The events to invoke, each with where it came from.
fn events(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, Value)>> {
    let mut events = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            for (n, line) in std::io::stdin().lock().lines().enumerate() {
                let line = line.context("reading stdin")?;
                if line.trim().is_empty() {
                    continue;
                }
                let event = serde_json::from_str(&line)
                    .with_context(|| format!("stdin line {}: not JSON", n + 1))?;
                events.push((format!("stdin:{}", n + 1), event));
            }
        } else {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let event = serde_json::from_str(&text)
                .with_context(|| format!("{}: not JSON", path.display()))?;
            events.push((path.display().to_string(), event));
        }
    }
    Ok(events)
}
