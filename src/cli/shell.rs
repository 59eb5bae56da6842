//! The command as the shell knows it: the name it was run by (`prefect-doctor`, or
//! `kubectl prefect-doctor` when installed as the kubectl plugin `kubectl-prefect_doctor`), its
//! completion scripts, and its man pages, all from the same clap definitions.

use std::{ffi::OsStr, path::Path, sync::OnceLock};

use clap::CommandFactory;

use super::args::Cli;

/// The name the program's own messages use unless run as a kubectl plugin.
pub const NAME: &str = "prefect-doctor";

static PROGRAM: OnceLock<String> = OnceLock::new();

/// The command as the user typed it, from `argv[0]`: kubectl runs the plugin
/// `kubectl-prefect_doctor` for `kubectl prefect-doctor` (an underscore in the file name is a dash
/// on its command line).
pub fn invoked_as(argv0: Option<&OsStr>) -> String {
    let file = argv0
        .map(Path::new)
        .and_then(Path::file_name)
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = file.strip_suffix(".exe").unwrap_or(&file);
    match file.strip_prefix("kubectl-") {
        Some(plugin) if !plugin.is_empty() => {
            let words: Vec<String> = plugin
                .split('-')
                .map(|w| {
                    // Only safe characters: the name ends up in help and messages.
                    w.replace('_', "-")
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .take(40)
                        .collect()
                })
                .collect();
            format!("kubectl {}", words.join(" "))
        }
        _ => NAME.to_string(),
    }
}

/// Sets the name for this process from `argv[0]` (the first call wins) and returns it.
pub fn set_program(argv0: Option<&OsStr>) -> &'static str {
    PROGRAM.get_or_init(|| invoked_as(argv0))
}

/// The command as the user typed it (`prefect-doctor` until [`set_program`] says otherwise).
pub fn program() -> &'static str {
    PROGRAM.get().map_or(NAME, String::as_str)
}

/// The command as completion offers it: without its hidden subcommands (clap_complete would offer
/// them), built.
pub fn visible_command() -> clap::Command {
    let full = Cli::command();
    let mut cmd = clap::Command::new(NAME)
        .about(full.get_about().cloned().unwrap_or_default())
        .version(env!("CARGO_PKG_VERSION"))
        .args(full.get_arguments().cloned())
        .subcommand_required(true)
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    cmd.build();
    cmd
}

/// The completion script of `shell`, for the command `prefect-doctor`.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut cmd = visible_command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, NAME, &mut out);
    let script = String::from_utf8_lossy(&out).into_owned();
    if shell == clap_complete::Shell::Bash {
        bash_states_agree(&script)
    } else {
        script
    }
}

/// clap_complete's bash script tracks the words typed as a state (`prefect__doctor__subcmd__check`)
/// built by escaping the program's name and each subcommand apart, but spells its `case` labels by
/// escaping the whole path at once, so the program name's dash becomes the subcommand separator
/// (`prefect__subcmd__doctor__subcmd__check`) and nothing after the subcommand ever completes
/// (clap-rs/clap#6421). The labels are spelt the way the state is; the shell tests drive the
/// script in real shells.
fn bash_states_agree(script: &str) -> String {
    let state = NAME.replace('-', "__");
    let label = NAME.replace('-', "__subcmd__");
    if state == label {
        return script.to_string();
    }
    script
        .lines()
        .map(|line| {
            let t = line.trim_start();
            // Only the `case "${cmd}"` labels: `prefect__subcmd__doctor__subcmd__check)`.
            if t.starts_with(&label) && t.ends_with(')') {
                line.replacen(&label, &state, 1)
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The man pages: `prefect-doctor.1` and one `prefect-doctor-<command>.1` per visible subcommand,
/// as (file name, roff).
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut cmd = Cli::command().bin_name(NAME);
    cmd.build();
    let mut pages = Vec::new();
    let mut render = |c: clap::Command, file: String| -> Result<(), String> {
        let mut out = Vec::new();
        clap_mangen::Man::new(c)
            .render(&mut out)
            .map_err(|e| format!("cannot render {file}: {e}"))?;
        pages.push((file, out));
        Ok(())
    };
    render(cmd.clone(), format!("{NAME}.1"))?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("{NAME}-{}", sub.get_name());
        render(sub.clone().name(name.clone()), format!("{name}.1"))?;
    }
    Ok(pages)
}

/// Writes [`man_pages`] into `dir` (made if missing); returns the files' names.
pub fn write_man_pages(dir: &Path) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for (file, roff) in man_pages()? {
        let path = dir.join(&file);
        std::fs::write(&path, roff).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        names.push(file);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_one_typed() {
        for (argv0, shown) in [
            ("prefect-doctor", "prefect-doctor"),
            ("/usr/local/bin/prefect-doctor", "prefect-doctor"),
            ("target/debug/prefect-doctor.exe", "prefect-doctor"),
            (
                "/home/u/.krew/bin/kubectl-prefect_doctor",
                "kubectl prefect-doctor",
            ),
            ("kubectl-prefect_doctor.exe", "kubectl prefect-doctor"),
            ("kubectl-doctor", "kubectl doctor"),
            ("kubectl-", "prefect-doctor"),
            ("kubectl-evil\u{1b}[2J", "kubectl evil2J"),
            ("", "prefect-doctor"),
        ] {
            assert_eq!(invoked_as(Some(OsStr::new(argv0))), shown, "{argv0:?}");
        }
        assert_eq!(invoked_as(None), "prefect-doctor");
    }
}
