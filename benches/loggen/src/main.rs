//! `loggen`: writes a realistic, reproducible Apache/nginx combined access log of an EC-CUBE
//! shop of a given size, plain or gzip-compressed, for the scan benchmarks.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use flate2::write::GzEncoder;
use flate2::Compression;
use loggen::{parse_size, parse_start, Config, Flavor, Generator};

#[derive(Parser, Debug)]
#[command(
    name = "loggen",
    about = "Generate a realistic combined access log of an EC-CUBE shop (deterministic from --seed)"
)]
struct Cli {
    /// Uncompressed size to write, e.g. 128MiB, 1GiB, 4GiB (output stops at the last whole
    /// line that fits).
    #[arg(long, value_parser = parse_size_arg, conflicts_with = "lines", required_unless_present = "lines")]
    size: Option<u64>,

    /// Number of lines to write instead of a size.
    #[arg(long)]
    lines: Option<u64>,

    /// Seed of the pseudo-random generator: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Compress the output with gzip (level 6, as logrotate does).
    #[arg(long)]
    gzip: bool,

    /// Output file (default: stdout).
    #[arg(long, short)]
    out: Option<PathBuf>,

    /// Date (Japan time) of the first line: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS.
    #[arg(long, default_value = "2024-04-01", value_parser = parse_start_arg)]
    start: i64,

    /// New visitor sessions per hour at the evening peak (sets lines per second).
    #[arg(long, default_value_t = 2400.0)]
    sessions_per_hour: f64,

    /// Log `-` (apache) or `0` (nginx) for empty bodies.
    #[arg(long, default_value = "apache", value_parser = ["apache", "nginx"])]
    flavor: String,

    /// Host name used in referers.
    #[arg(long, default_value = "shop.example.jp")]
    host: String,
}

fn parse_size_arg(s: &str) -> Result<u64, String> {
    parse_size(s).ok_or_else(|| format!("not a size: {s} (try 128MiB, 1GiB)"))
}

fn parse_start_arg(s: &str) -> Result<i64, String> {
    parse_start(s).ok_or_else(|| format!("not a date: {s} (try 2024-04-01)"))
}

fn generate(cli: &Cli, sink: &mut dyn Write) -> io::Result<u64> {
    let mut g = Generator::new(Config {
        seed: cli.seed,
        start: cli.start,
        sessions_per_hour: cli.sessions_per_hour,
        host: cli.host.clone(),
        flavor: if cli.flavor == "nginx" {
            Flavor::Nginx
        } else {
            Flavor::Apache
        },
    });
    let limit = cli.size.unwrap_or(u64::MAX);
    let max_lines = cli.lines.unwrap_or(u64::MAX);
    let mut written = 0u64;
    let mut n = 0u64;
    let mut buf = Vec::with_capacity(1 << 17);
    let mut line = Vec::with_capacity(1024);
    while n < max_lines {
        line.clear();
        g.next_line(&mut line);
        if written + line.len() as u64 > limit {
            break;
        }
        written += line.len() as u64;
        n += 1;
        buf.extend_from_slice(&line);
        if buf.len() >= 1 << 16 {
            sink.write_all(&buf)?;
            buf.clear();
        }
    }
    sink.write_all(&buf)?;
    Ok(n)
}

fn run(cli: &Cli) -> io::Result<()> {
    let raw: Box<dyn Write> = match &cli.out {
        Some(p) => Box::new(File::create(p)?),
        None => Box::new(io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 20, raw);
    if cli.gzip {
        let mut gz = GzEncoder::new(out, Compression::new(6));
        generate(cli, &mut gz)?;
        out = gz.finish()?;
    } else {
        generate(cli, &mut out)?;
    }
    out.flush()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loggen: {e}");
            ExitCode::FAILURE
        }
    }
}
