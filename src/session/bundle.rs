//! `bundle`: a `check` run whose probes record every answer, written with its report into one
//! redacted support bundle that `check --from` re-analyses anywhere.

use std::{path::PathBuf, sync::Arc};

use crate::{
    bundle::{
        Collected, DEFAULT_MAX_SIZE, FORMAT, LeftOut, Manifest,
        write::{Contents, Redactor},
    },
    catalog::Catalog,
    engine::rounds::Progress,
    probes::tape::{Recorder, TapeMode},
    report::Report,
};

use super::{
    check::CheckInput,
    run::{Prepared, prepare},
};

/// What `bundle` is asked to record, and where to write it.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BundleInput {
    #[command(flatten)]
    pub check: CheckInput,
    /// Where to write the bundle [default:
    /// prefect-doctor-<release or host>-<UTC yyyymmddThhmmssZ>.tar.gz].
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// The bundle's largest size, e.g. 20MB; the largest logs are cut first, then the largest
    /// recorded answers, and the manifest names them [default: 20MB].
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_size)]
    pub max_size: Option<u64>,
    /// A regular expression whose matches are replaced by REDACTED everywhere in the bundle
    /// (repeatable; also the config file's [redact] patterns), e.g. a customer's host names.
    #[arg(long, value_name = "REGEX")]
    pub redact: Vec<String>,
}

/// What was written.
pub struct Written {
    pub report: Report,
    pub path: PathBuf,
    pub bytes: u64,
    pub cut: usize,
}

/// Runs the checks, recording, and writes the bundle; `Err` is a usage error.
pub fn run(
    input: &BundleInput,
    command_line: &[String],
    progress: &dyn Progress,
) -> Result<(Written, &'static Catalog), String> {
    if input.check.from.is_some() {
        return Err("bundle records a live run; --from re-analyses one (use check --from)".into());
    }
    let recorder = Arc::new(Recorder::default());
    let prepared: Prepared = prepare(&input.check, TapeMode::Record(recorder.clone()), None)?;
    let catalog = prepared.setup.checks.catalog;
    let patterns: Vec<String> = input
        .redact
        .iter()
        .chain(prepared.setup.config.redact.iter())
        .cloned()
        .collect();
    let redactor = Redactor::new(&patterns)?;
    let Prepared {
        setup,
        factory,
        scope,
    } = prepared;
    let results = setup.run_some(None, &|| factory.make(), input.check.wait, progress);
    let snapshot = factory.snapshot(&scope);
    // The checks' answers only: what is read for people below is not needed to re-analyse.
    let mut tape = recorder.tape();
    // What `fix --from` plans from: the planners' reads (read-only, as in a dry run) for every
    // check that did not pass. Only the statements the checks did not send are added: the session
    // and every answer the checks saw stay as the checks saw them.
    {
        let cx = factory.make();
        setup.runtime.block_on(async {
            for r in results.iter().filter(|r| {
                matches!(
                    r.status,
                    crate::report::Status::Fail | crate::report::Status::Warn
                )
            }) {
                let _ = crate::fix::plan(&r.id, &cx).await;
            }
        });
        for e in recorder.tape().postgres {
            if !tape
                .postgres
                .iter()
                .any(|x| x.sql == e.sql && x.params == e.params)
            {
                tape.postgres.push(e);
            }
        }
    }
    // The files for people, read with the run's own probes after the checks.
    let (people, not_collected) = {
        let cx = factory.make();
        setup.runtime.block_on(crate::bundle::people::collect(&cx))
    };
    let (results, elapsed) = setup.finish(results);
    let report = scope.report(results, input.check.common.strict, elapsed);
    let created = jiff::Timestamp::now();
    let path = input.output_file.clone().unwrap_or_else(|| {
        let name = report
            .release
            .as_ref()
            .map(|r| r.name.clone())
            .or_else(|| snapshot.db.as_ref().map(|d| d.host.clone()))
            .or_else(|| {
                snapshot
                    .ui
                    .as_ref()
                    .and_then(|u| u.url.host_str().map(str::to_string))
            })
            .unwrap_or_else(|| "local".to_string());
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .take(63)
            .collect();
        PathBuf::from(format!(
            "prefect-doctor-{name}-{}.tar.gz",
            created.strftime("%Y%m%dT%H%M%SZ")
        ))
    });
    let manifest = Manifest {
        format: FORMAT,
        doctor_version: env!("CARGO_PKG_VERSION").to_string(),
        created: created.to_string(),
        command_line: command_line
            .iter()
            .map(|a| crate::redact::scrub(&crate::redact::mask_shapes(a)))
            .collect(),
        collected: vec![
            Collected {
                file: "manifest.json".into(),
                what: "this: the bundle's format, what it holds and what it left out".into(),
            },
            Collected {
                file: "report.json".into(),
                what: "the report of the run, as `check -o json` writes it".into(),
            },
            Collected {
                file: "session.json".into(),
                what: "the run's targets and the names its fixes use (no password)".into(),
            },
            Collected {
                file: "tape.json".into(),
                what: format!(
                    "every answer the checks got: the database session and {} queries' rows, {} \
                     HTTP exchanges with the API and the UI, {} answers of the Kubernetes API \
                     (Secret values as salted hashes)",
                    tape.postgres.len(),
                    tape.http.len(),
                    tape.kube.len()
                ),
            },
        ]
        .into_iter()
        .chain(people.iter().map(|f| Collected {
            file: f.name.clone(),
            what: f.what.clone(),
        }))
        .collect(),
        left_out: left_out().into_iter().chain(not_collected).collect(),
        cut: Vec::new(),
        redact_patterns: 0,
    };
    // Exactly what `check -o json` prints (scrubbed as output is).
    let report_json =
        crate::redact::scrub(&crate::render::json::render(&report.clone().sanitized()));
    let max = input.max_size.unwrap_or(DEFAULT_MAX_SIZE);
    let (bytes, cut) = crate::bundle::write::write(
        &path,
        Contents {
            manifest,
            people,
            report: report_json,
            snapshot,
            tape,
        },
        &redactor,
        max,
    )?;
    Ok((
        Written {
            report,
            path,
            bytes,
            cut,
        },
        catalog,
    ))
}

fn left_out() -> Vec<LeftOut> {
    vec![
        LeftOut {
            what: "the local prefect CLI's configuration (~/.prefect, PREFECT__* variables)".into(),
            why: "it holds API keys; prefect.* checks re-analyse as skip".into(),
        },
        LeftOut {
            what: "passwords, tokens and every other secret the run learned".into(),
            why: "never collected: each is masked wherever it appears".into(),
        },
    ]
}
